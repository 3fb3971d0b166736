/* Overview: the four dimensions over the range against the period before (GET /v1/overview), and
 * daily trends of active users and net revenue. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;

  const COUNTS = { scale: ["active_users", "new_users", "retained_users", "orders"] };
  const SHARES = { efficiency: ["activation_rate", "repurchase_rate"], quality: ["retention_d30", "csat"] };
  const MONEY = { value: ["net_revenue", "arpu", "ltv_90d"] };

  function relative(now, before) {
    if (now === null || before === null || before === undefined || Number(before) === 0) return null;
    return (Number(now) - Number(before)) / Math.abs(Number(before));
  }

  /* Every figure as a row: dimension, metric (and currency), value now and before, change. */
  function rows(overview) {
    const out = [];
    const previous = overview.previous;
    for (const [dimension, keys] of Object.entries(COUNTS)) {
      for (const key of keys) {
        const now = overview[dimension][key];
        const before = previous[dimension][key];
        out.push({ dimension, key, label: t(key), now, before, change: relative(now, before), kind: "count" });
      }
    }
    for (const [dimension, keys] of Object.entries(SHARES)) {
      for (const key of keys) {
        const now = overview[dimension][key];
        const before = previous[dimension][key];
        const change = now === null || before === null ? null : Math.round((now - before) * 10000) / 10000;
        out.push({ dimension, key, label: t(key), now, before, change, kind: "share" });
      }
    }
    for (const [dimension, keys] of Object.entries(MONEY)) {
      for (const key of keys) {
        const currencies = new Set([...Object.keys(overview[dimension][key]), ...Object.keys(previous[dimension][key])]);
        for (const currency of [...currencies].sort()) {
          const now = overview[dimension][key][currency] ?? null;
          const before = previous[dimension][key][currency] ?? null;
          out.push({ dimension, key: key + ":" + currency, label: t(key) + " " + currency, now, before, currency, change: relative(now, before), kind: "money" });
        }
      }
    }
    return out;
  }

  function shown(row, value) {
    if (row.kind === "count") return fmt.int(value);
    if (row.kind === "share") return fmt.share(value);
    return fmt.money(value, row.currency);
  }

  function change(row) {
    if (row.change === null) return "–";
    return row.kind === "share" ? fmt.points(row.change) : (row.change > 0 ? "+" : "") + fmt.share(row.change);
  }

  const answer = C.api("/v1/overview", C.range());

  for (const dimension of ["scale", "efficiency", "quality", "value"]) {
    C.load(dimension, async (element) => {
      const all = rows(await answer).filter((row) => row.dimension === dimension);
      return C.figures(
        element,
        all.map((row) => ({
          key: row.key,
          label: row.label,
          value: row.now,
          text: shown(row, row.now),
          note: t("vs", { change: change(row) }),
        }))
      );
    });
  }

  C.load("figures", async (element) => {
    const all = rows(await answer);
    return C.table(element, [
      { key: "dimension", label: t("dimension"), format: (v) => t(v), text: true },
      { key: "key", label: t("metric"), format: (v, row) => row.label, text: true },
      { key: "now", label: t("current"), format: (v, row) => shown(row, v) },
      { key: "before", label: t("previous"), format: (v, row) => shown(row, v) },
      { key: "change", label: t("change"), format: (v, row) => change(row),
        decorate: (td, row, v) => { if (v) td.className = v > 0 ? "up" : "down"; } },
    ], all);
  });

  C.load("active-trend", async (element) => {
    const body = await C.api("/v1/activity/active-users", Object.assign({ granularity: "day" }, C.range()));
    if (!body.series.some((p) => p.users > 0)) return false;
    C.chart(element, {
      grid: { left: 48, right: 16, top: 16, bottom: 32 },
      xAxis: { type: "category", data: body.series.map((p) => p.period) },
      yAxis: { type: "value", minInterval: 1 },
      tooltip: { trigger: "axis", valueFormatter: fmt.int },
      series: [{ name: t("active_users"), type: "line", showSymbol: false, areaStyle: { opacity: 0.15 }, data: body.series.map((p) => p.users) }],
    });
    return true;
  });

  C.load("revenue-trend", async (element) => {
    const body = await C.api("/v1/value/revenue", Object.assign({ granularity: "day" }, C.range()));
    const currencies = [...new Set(body.series.flatMap((p) => Object.keys(p.currencies)))].sort();
    if (currencies.length === 0) return false;
    C.chart(element, {
      grid: { left: 64, right: 16, top: 28, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: body.series.map((p) => p.period) },
      yAxis: { type: "value" },
      tooltip: { trigger: "axis" },
      series: currencies.map((currency) => ({
        name: currency,
        type: "bar",
        data: body.series.map((p) => (p.currencies[currency] ? Number(p.currencies[currency].net) : 0)),
        tooltip: { valueFormatter: (v) => fmt.money(v, currency) },
      })),
    });
    return true;
  });
})();
