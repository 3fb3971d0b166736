/* Activity: active users per day, week or month, optionally narrowed to a scene or tool
 * (GET /v1/activity/active-users), stickiness per month (GET /v1/activity/stickiness), lifecycle
 * (GET /v1/activity/lifecycle) and frequency (GET /v1/activity/frequency) per week or month.
 * Lifecycle and frequency take no days: with granularity=day they are shown by week, and say so. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, params, escape, periods } = C;
  const { withCompleteness, bar, line, markIncomplete } = periods;

  /* The same names and defaults as the template's controls. */
  const GRANULARITIES = ["day", "week", "month"];
  const granularity = GRANULARITIES.includes(params.get("granularity")) ? params.get("granularity") : "day";
  const longer = granularity === "day" ? "week" : granularity;
  const filter = (params.get("filter") || "").trim();

  const form = document.querySelector("form[data-controls]");
  form.addEventListener("submit", () => {
    const input = form.elements.namedItem("filter");
    input.value = input.value.trim();
    if (input.value === "") input.disabled = true;
  });

  /* A small note above a section's content. */
  const note = (element, text) => C.note(element, text, { top: true });

  /* The scenes and tools the API knows, offered once it has named them (422 unknown_feature). */
  function offerKnown(error) {
    const details = (error.body && error.body.error && error.body.error.details) || [];
    const known = details.flatMap((d) => d.known || []);
    if (known.length === 0) return;
    const list = document.querySelector("[data-filters]");
    list.replaceChildren(...known.map((name) => Object.assign(document.createElement("option"), { value: name })));
  }

  const range = C.range();
  const activeUsers = C.api("/v1/activity/active-users", Object.assign({ granularity, filter }, range)).then(
    (body) => withCompleteness(body.series, granularity, body.watermark),
    (error) => {
      if (error instanceof C.ApiFailure) offerKnown(error);
      throw error;
    }
  );
  const stickiness = C.api("/v1/activity/stickiness", range).then((body) =>
    withCompleteness(body.series, "month", body.watermark)
  );
  const lifecycle = C.api("/v1/activity/lifecycle", Object.assign({ granularity: longer }, range)).then((body) =>
    withCompleteness(body.series, longer, body.watermark)
  );
  const frequency = C.api("/v1/activity/frequency", Object.assign({ granularity: longer }, range)).then((body) =>
    withCompleteness(body.series, longer, body.watermark)
  );
  /* Until a section's load handles it, a failure is not an unhandled rejection. */
  for (const answer of [activeUsers, stickiness, lifecycle, frequency]) answer.catch(() => {});

  /* Mean of the monthly stickiness over the months with active users, to 4 places as shares are. */
  function averageStickiness(series) {
    const months = series.filter((p) => p.mau > 0);
    if (months.length === 0) return { value: null, months: 0 };
    const mean = months.reduce((sum, p) => sum + p.stickiness, 0) / months.length;
    return { value: Math.round(mean * 10000) / 10000, months: months.length };
  }

  C.load("headline", async (element) => {
    const [users, monthly] = await Promise.allSettled([activeUsers, stickiness]);
    if (monthly.status === "rejected") throw monthly.reason;
    const items = [];
    const filterNote = filter ? " · " + t("filtered", { filter }) : "";
    if (users.status === "fulfilled") {
      const latest = users.value[users.value.length - 1];
      items.push({
        key: "latest_active_users",
        label: t("latest_" + granularity),
        value: latest ? latest.users : null,
        text: fmt.int(latest ? latest.users : null),
        note: latest ? latest.period + (latest.complete ? "" : " · " + t("not_complete")) + filterNote : filterNote,
      });
    } else {
      if (!(users.reason instanceof C.ApiFailure)) throw users.reason;
      items.push({
        key: "latest_active_users",
        label: t("latest_" + granularity),
        value: null,
        text: fmt.int(null),
        note: t("error", { message: users.reason.message }),
      });
    }
    const average = averageStickiness(monthly.value);
    items.push({
      key: "average_stickiness",
      label: t("average_stickiness"),
      value: average.value,
      text: fmt.share(average.value),
      note: t("months_averaged", { count: average.months }),
    });
    return C.figures(element, items);
  });

  C.load("active-users", async (element) => {
    const rows = await activeUsers;
    if (!rows.some((p) => p.users > 0)) return false;
    const daily = granularity === "day";
    C.chart(element, {
      grid: { left: 56, right: 16, top: 16, bottom: 32 },
      xAxis: { type: "category", data: rows.map((p) => p.period) },
      yAxis: { type: "value", minInterval: 1, name: t("active_users"), nameGap: 8, nameTextStyle: { align: "left" } },
      tooltip: periods.axisTooltip(rows, (item, row) => fmt.int(row.users)),
      series: [
        daily
          ? { name: t("active_users"), type: "line", symbol: "none", showSymbol: true, areaStyle: { opacity: 0.15 },
              data: rows.map((p) => line(p.users, p)) }
          : { name: t("active_users"), type: "bar", data: rows.map((p) => bar(p.users, p)) },
      ],
    });
    return true;
  });

  C.load("active-users-table", async (element) => {
    const rows = await activeUsers;
    return C.table(element, [
      { key: "period", label: t("period"), text: true, decorate: markIncomplete },
      { key: "users", label: t("active_users"), format: fmt.int, decorate: markIncomplete },
    ], rows);
  });

  C.load("stickiness", async (element) => {
    const rows = await stickiness;
    if (!rows.some((p) => p.mau > 0)) return false;
    C.chart(element, {
      grid: { left: 56, right: 56, top: 40, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: rows.map((p) => p.period) },
      yAxis: [
        { type: "value", name: t("users"), nameTextStyle: { align: "left" } },
        { type: "value", name: t("stickiness"), min: 0, splitLine: { show: false },
          axisLabel: { formatter: (v) => fmt.share(v) }, nameTextStyle: { align: "right" } },
      ],
      tooltip: periods.axisTooltip(rows, (item, row) =>
        item.seriesIndex === 0 ? fmt.decimal(row.avg_dau) : item.seriesIndex === 1 ? fmt.int(row.mau) : fmt.share(row.stickiness)
      ),
      series: [
        { name: t("avg_dau"), type: "bar", data: rows.map((p) => bar(p.avg_dau, p)) },
        { name: t("mau"), type: "bar", data: rows.map((p) => bar(p.mau, p)) },
        { name: t("stickiness"), type: "line", yAxisIndex: 1, symbol: "circle",
          data: rows.map((p) => line(p.stickiness, p)) },
      ],
    });
    note(element, t("month_periods"));
    return true;
  });

  C.load("stickiness-table", async (element) => {
    const rows = await stickiness;
    return C.table(element, [
      { key: "period", label: t("period"), text: true, decorate: markIncomplete },
      { key: "avg_dau", label: t("avg_dau"), format: fmt.decimal, decorate: markIncomplete },
      { key: "mau", label: t("mau"), format: fmt.int, decorate: markIncomplete },
      { key: "stickiness", label: t("stickiness"), format: fmt.share, decorate: markIncomplete },
    ], rows);
  });

  const LIFECYCLE = ["new", "returning", "resurrecting", "dormant"];

  C.load("lifecycle", async (element) => {
    const rows = await lifecycle;
    if (granularity === "day") note(element, t("weekly_instead"));
    if (!rows.some((p) => LIFECYCLE.some((key) => p[key] !== 0))) return false;
    C.chart(element, {
      color: ["#2563eb", "#16a34a", "#a855f7", "#94a3b8"],
      grid: { left: 56, right: 16, top: 40, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: rows.map((p) => p.period) },
      yAxis: { type: "value", minInterval: 1, name: t("users"), nameTextStyle: { align: "left" } },
      tooltip: periods.axisTooltip(rows, (item, row) => fmt.int(row[LIFECYCLE[item.seriesIndex]])),
      series: LIFECYCLE.map((key) => ({
        name: t(key),
        type: "bar",
        stack: "users",
        /* Dormant users left: below zero whichever sign the API gives them. */
        data: rows.map((p) => bar(key === "dormant" ? -Math.abs(p[key]) : p[key], p)),
      })),
    });
    note(element, t("dormant_below"));
    return true;
  });

  C.load("lifecycle-table", async (element) => {
    const rows = await lifecycle;
    return C.table(element, [
      { key: "period", label: t("period"), text: true, decorate: markIncomplete },
      ...LIFECYCLE.map((key) => ({ key, label: t(key), format: fmt.int, decorate: markIncomplete })),
    ], rows);
  });

  function dayCounts(rows) {
    const most = Math.max(0, ...rows.flatMap((p) => Object.keys(p.days).map(Number)));
    return Array.from({ length: most }, (_, i) => i + 1);
  }

  const dayLabel = (count) => (count === 1 ? t("day_count_one") : t("day_count", { count }));

  C.load("frequency", async (element) => {
    const rows = await frequency;
    if (granularity === "day") note(element, t("weekly_instead"));
    const counts = dayCounts(rows);
    if (counts.length === 0) return false;
    const cells = [];
    rows.forEach((p, x) => {
      for (const [days, users] of Object.entries(p.days)) {
        if (users > 0) {
          cells.push([x, Number(days) - 1, users]);
        }
      }
    });
    const most = Math.max(1, ...rows.flatMap((p) => Object.values(p.days)));
    C.chart(element, {
      grid: { left: 64, right: 16, top: 24, bottom: 84 },
      xAxis: { type: "category", data: rows.map((p) => p.period), splitArea: { show: true },
        axisLabel: { formatter: (label, i) => (rows[i].complete ? label : label + " *") } },
      yAxis: { type: "category", data: counts.map(String), name: t("active_days"), nameTextStyle: { align: "left" }, splitArea: { show: true } },
      visualMap: {
        min: 0, max: most, calculable: true, orient: "horizontal", left: "center", bottom: 0,
        itemHeight: 160, inRange: { color: ["#dbeafe", "#1e3a8a"] }, formatter: (v) => fmt.int(v),
      },
      tooltip: {
        trigger: "item",
        formatter: (item) => {
          const row = rows[item.value[0]];
          return periods.heading(row) + "<br>" + escape(dayLabel(item.value[1] + 1)) + ": <b>" + escape(fmt.int(item.value[2])) + "</b>";
        },
      },
      series: [{ name: t("users"), type: "heatmap", data: cells, label: { show: counts.length <= 10, formatter: (item) => fmt.int(item.value[2]) },
        emphasis: { itemStyle: { borderColor: "#0f172a", borderWidth: 1 } } }],
    });
    if (rows.some((p) => !p.complete)) note(element, t("starred"));
    return true;
  });

  C.load("frequency-table", async (element) => {
    const rows = await frequency;
    return C.table(element, [
      { key: "period", label: t("period"), text: true, decorate: markIncomplete },
      { key: "active_users", label: t("active_users"), format: fmt.int, decorate: markIncomplete,
        value: (p) => Object.values(p.days).reduce((sum, n) => sum + n, 0) },
      ...dayCounts(rows).map((count) => ({
        key: "days:" + count, label: dayLabel(count), format: fmt.int, decorate: markIncomplete,
        value: (p) => p.days[String(count)] ?? 0,
      })),
    ], rows);
  });
})();
