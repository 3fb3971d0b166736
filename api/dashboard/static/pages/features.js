/* Scenes and tools: the feature report (GET /v1/features) as a table and a bar chart of users; then,
 * for one feature (the `feature` choice, by default the report's first), its own retention (GET
 * /v1/retention/cohorts with the feature as cohort and as return, weekly) as a heat-map table and a
 * curve weighted by cohort size, and its impact (GET /v1/features/<feature>/impact): adopters and
 * others side by side, and the differences with their 95 % intervals as error bars and a table. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, escape, cohorts } = C;

  const asked = C.params.get("feature") || "";
  const report = C.api("/v1/features", C.range());
  const chosen = asked ? Promise.resolve(asked) : report.then((body) => (body.features.length ? body.features[0].feature : null));

  /* 422 unknown_feature says so in the page's language, with the features that are known. */
  function unknownFeature(feature) {
    return (error) => {
      const body = error.body && error.body.error;
      if (error.status !== 422 || !body || body.code !== "unknown_feature") throw error;
      const known = (body.details && body.details[0] && body.details[0].known) || [];
      const message = t("unknown_feature", { names: feature, known: known.join(", ") || t("none") });
      throw new C.ApiFailure(422, { error: { code: "unknown_feature", message: message } });
    };
  }

  const retention = chosen.then((feature) =>
    feature
      ? C.api("/v1/retention/cohorts", Object.assign({ granularity: "week", cohort: feature, return: feature }, C.range())).catch(unknownFeature(feature))
      : null
  );
  const impact = chosen.then((feature) =>
    feature ? C.api("/v1/features/" + encodeURIComponent(feature) + "/impact", C.range()).catch(unknownFeature(feature)) : null
  );

  /* The choice lists every feature of the report; one asked for in the URL stays even when unused. */
  function fillChoice(features, current) {
    const select = document.querySelector("form[data-controls] select[data-feature]");
    if (!select) return;
    const names = features.map((row) => row.feature);
    if (current && !names.includes(current)) names.push(current);
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (current) select.value = current;
  }

  /* The chosen feature's name after the titles of the sections about it. */
  function nameSections(feature) {
    for (const name of ["feature-retention", "feature-curve", "impact-groups", "impact-chart", "impact-differences"]) {
      const title = C.section(name).querySelector("h2");
      const span = document.createElement("span");
      span.className = "feature-name";
      span.textContent = feature;
      title.append(" · ", span);
    }
  }

  C.load("report", async (element) => {
    const [body, feature] = await Promise.all([report, chosen]);
    fillChoice(body.features, feature);
    if (feature) nameSections(feature);
    return C.table(element, [
      { key: "feature", label: t("feature"), text: true, decorate: C.choiceLink("feature", feature) },
      { key: "adopted", label: t("adopted"), format: fmt.int },
      { key: "users", label: t("users"), format: fmt.int },
      { key: "uses", label: t("uses"), format: fmt.int },
      { key: "share_of_active", label: t("share_of_active"), format: fmt.share },
      { key: "repeat_7d", label: t("repeat_7d"), format: fmt.share },
    ], body.features);
  });

  C.load("users", async (element) => {
    const body = await report;
    const rows = body.features;
    if (rows.length === 0) return false;
    C.chart(element, {
      grid: { left: 8, right: 56, top: 8, bottom: 28, containLabel: true },
      xAxis: { type: "value", minInterval: 1, name: t("users"), nameLocation: "middle", nameGap: 24 },
      yAxis: { type: "category", inverse: true, data: rows.map((row) => row.feature) },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        formatter: (items) => {
          const row = rows[items[0].dataIndex];
          return escape(row.feature) + "<br>" + escape(t("users")) + ": <b>" + escape(fmt.int(row.users)) + "</b><br>" +
            escape(t("share_of_active")) + ": " + escape(fmt.share(row.share_of_active)) + "<br>" +
            escape(t("adopted")) + ": " + escape(fmt.int(row.adopted)) + " · " + escape(t("uses")) + ": " + escape(fmt.int(row.uses));
        },
      },
      series: [{
        name: t("users"),
        type: "bar",
        data: rows.map((row) => row.users),
        label: { show: true, position: "right", formatter: (p) => fmt.int(p.value) },
      }],
    });
    return true;
  });

  const week = (k) => t("week", { n: k });

  /* Feature retention: the heat-map triangle (rates in data-value, shade by rate, hatched when the
   * period has not ended). */
  C.load("feature-retention", async (element) => {
    const body = await retention;
    if (body === null) return false;
    return cohorts.heatMap(element, [
      { key: "cohort", label: t("cohort"), text: true },
      { key: "size", label: t("size"), format: fmt.int },
    ], body.cohorts, week);
  });

  C.load("feature-curve", async (element) => {
    const body = await retention;
    if (body === null) return false;
    const rows = body.cohorts.filter((row) => row.size > 0);
    const points = cohorts.curve(rows, cohorts.width(rows));
    if (!points.some((p) => p !== null)) return false;
    C.chart(element, {
      grid: { left: 56, right: 24, top: 16, bottom: 48 },
      xAxis: { type: "category", data: points.map((_, k) => week(k)), name: t("offset"), nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => fmt.share(v) } },
      tooltip: cohorts.curveTooltip(() => t("rate")),
      series: [{ name: t("all"), type: "line", symbolSize: 6, lineStyle: { width: 3 }, data: points }],
    });
    C.note(element, t("curve_note"));
    return true;
  });

  /* Impact: one row per measure (money per currency), adopters and others side by side. */
  function currencies(body) {
    return [...new Set([
      ...Object.keys(body.groups.adopters.net_revenue_d30),
      ...Object.keys(body.groups.others.net_revenue_d30),
      ...Object.keys(body.difference.net_revenue_d30),
    ])].sort();
  }

  function shown(kind, value, currency) {
    if (kind === "count") return fmt.int(value);
    if (kind === "share") return fmt.share(value);
    return fmt.money(value, currency);
  }

  C.load("impact-groups", async (element) => {
    const body = await impact;
    if (body === null) return false;
    const { adopters, others } = body.groups;
    const rows = [
      { key: "users", label: t("users"), kind: "count", adopters: adopters.users, others: others.users },
      { key: "retained_d30", label: t("retained_d30"), kind: "share", adopters: adopters.retained_d30, others: others.retained_d30 },
      { key: "ordered_d30", label: t("ordered_d30"), kind: "share", adopters: adopters.ordered_d30, others: others.ordered_d30 },
      ...currencies(body).map((currency) => ({
        key: "net_revenue_d30:" + currency,
        label: t("net_revenue_d30") + " " + currency,
        kind: "money",
        currency,
        adopters: adopters.net_revenue_d30[currency] ?? null,
        others: others.net_revenue_d30[currency] ?? null,
      })),
    ];
    C.table(element, [
      { key: "key", label: t("metric"), text: true, format: (v, row) => row.label },
      { key: "adopters", label: t("adopters"), format: (v, row) => shown(row.kind, v, row.currency) },
      { key: "others", label: t("others"), format: (v, row) => shown(row.kind, v, row.currency) },
    ], rows);
    C.note(element, t("groups_note"));
    return true;
  });

  /* Differences (adopters − others) with their 95 % intervals: shares and money per currency. */
  function differences(body) {
    const d = body.difference;
    return [
      { key: "retained_d30", label: t("retained_d30"), kind: "share", value: d.retained_d30.value, ci95: d.retained_d30.ci95 },
      { key: "ordered_d30", label: t("ordered_d30"), kind: "share", value: d.ordered_d30.value, ci95: d.ordered_d30.ci95 },
      ...Object.keys(d.net_revenue_d30).sort().map((currency) => ({
        key: "net_revenue_d30:" + currency,
        label: t("net_revenue_d30") + " " + currency,
        kind: "money",
        currency,
        value: d.net_revenue_d30[currency].value,
        ci95: d.net_revenue_d30[currency].ci95,
      })),
    ];
  }

  function difference(row, value) {
    if (value === null || value === undefined) return fmt.text(value);
    if (row.kind === "share") return fmt.points(value);
    const amount = fmt.money(value, row.currency);
    return Number(value) > 0 ? "+" + amount : amount;
  }

  C.load("impact-differences", async (element) => {
    const body = await impact;
    if (body === null) return false;
    C.table(element, [
      { key: "key", label: t("metric"), text: true, format: (v, row) => row.label },
      { key: "value", label: t("difference"), format: (v, row) => difference(row, v),
        decorate: (td, row, v) => { if (v !== null && Number(v) !== 0) td.classList.add(Number(v) > 0 ? "up" : "down"); } },
      { key: "low", label: t("low"), value: (row) => (row.ci95 ? row.ci95[0] : null), format: (v, row) => difference(row, v) },
      { key: "high", label: t("high"), value: (row) => (row.ci95 ? row.ci95[1] : null), format: (v, row) => difference(row, v) },
    ], differences(body));
    C.note(element, t(body.note), { className: "causation" });
    return true;
  });

  C.load("impact-chart", async (element) => {
    const body = await impact;
    if (body === null) return false;
    const all = differences(body).filter((row) => row.value !== null);
    if (all.length === 0) return false;
    const panels = [
      { title: t("shares"), rows: all.filter((row) => row.kind === "share"), axis: (v) => fmt.points(v) },
    ];
    for (const currency of [...new Set(all.filter((row) => row.kind === "money").map((row) => row.currency))]) {
      panels.push({ title: t("money"), rows: all.filter((row) => row.currency === currency), axis: (v) => fmt.money(v, currency) });
    }
    const used = panels.filter((panel) => panel.rows.length);
    const share = 100 / used.length;
    const option = { title: [], grid: [], xAxis: [], yAxis: [], series: [], tooltip: { trigger: "item" } };
    used.forEach((panel, i) => {
      option.title.push({ text: panel.title, left: share * i + share / 2 + "%", textAlign: "center", top: 0, textStyle: { fontSize: 12, fontWeight: 600 } });
      option.grid.push({ left: share * i + 2 + "%", width: share - 4 + "%", top: 32, bottom: 32, containLabel: true });
      option.xAxis.push({ type: "category", gridIndex: i, data: panel.rows.map((row) => (row.kind === "money" ? row.currency : row.label)), axisLabel: { interval: 0, width: 140, overflow: "break" } });
      option.yAxis.push({ type: "value", gridIndex: i, axisLabel: { formatter: panel.axis } });
      const tooltip = {
        formatter: (p) => {
          const row = panel.rows[p.dataIndex];
          const interval = row.ci95
            ? t("interval", { low: difference(row, row.ci95[0]), high: difference(row, row.ci95[1]) })
            : t("no_interval");
          return escape(row.label) + "<br>" + escape(t("difference")) + ": <b>" + escape(difference(row, row.value)) + "</b><br>" + escape(interval);
        },
      };
      option.series.push({
        name: panel.title,
        type: "bar",
        xAxisIndex: i,
        yAxisIndex: i,
        barMaxWidth: 48,
        data: panel.rows.map((row) => ({ value: Number(row.value), itemStyle: { color: Number(row.value) >= 0 ? "#2563eb" : "#dc2626", opacity: 0.75 } })),
        tooltip,
      });
      option.series.push(C.errorBars(panel.rows.map((row) => row.ci95), {
        name: t("low") + " – " + t("high"),
        xAxisIndex: i,
        yAxisIndex: i,
        z: 10,
        tooltip,
      }));
    });
    C.chart(element, option);
    C.note(element, t(body.note), { className: "causation" });
    return true;
  });
})();
