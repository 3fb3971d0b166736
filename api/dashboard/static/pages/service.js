/* Service: GET /v1/service/satisfaction over the range by week or month. Headline figures: tickets
 * opened and resolved summed over the periods shown (each period counted whole, as the API counts
 * it), and the range's ratings with their CSAT from retention_by_score (ratings scoring 4-5 over all
 * ratings, both counts the API's); charts of opened vs resolved, resolution and first-response hours,
 * CSAT and average score per period; the series as a table; and retention by satisfaction bucket. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, escape } = C;

  const granularity = C.params.get("granularity") || "week";
  const range = C.range();
  const answer = C.api("/v1/service/satisfaction", Object.assign({ granularity }, range));

  const HOURS = ["median_resolution_hours", "p90_resolution_hours", "median_first_response_hours"];

  function quiet(series) {
    return series.every((p) => p.opened === 0 && p.resolved === 0 && p.ratings === 0);
  }

  /* A period of the granularity has not ended by the watermark (none without one). */
  function unfinished(period, watermark) {
    return Boolean(watermark) && C.periods.end(period, granularity) > Date.parse(watermark);
  }

  function sum(series, key) {
    return series.reduce((total, p) => total + p[key], 0);
  }

  C.load("headline", async (element) => {
    const body = await answer;
    const buckets = body.retention_by_score;
    const ratings = sum(buckets, "ratings");
    const satisfied = buckets.filter((b) => b.bucket === "4-5").reduce((total, b) => total + b.ratings, 0);
    const csat = ratings === 0 ? null : satisfied / ratings;
    if (quiet(body.series) && ratings === 0) return false;
    const summed = t("sum_" + granularity, { n: body.series.length });
    const opened = sum(body.series, "opened");
    const resolved = sum(body.series, "resolved");
    return C.figures(element, [
      { key: "opened", label: t("opened"), value: opened, text: fmt.int(opened), note: summed },
      { key: "resolved", label: t("resolved"), value: resolved, text: fmt.int(resolved), note: summed },
      { key: "ratings", label: t("ratings"), value: ratings, text: fmt.int(ratings), note: t("rated_between", range) },
      { key: "csat", label: t("csat"), value: csat, text: fmt.share(csat), note: t("csat_note") },
    ]);
  });

  function periods(body) {
    return body.series.map((p) => p.period);
  }

  C.load("volume", async (element) => {
    const body = await answer;
    if (quiet(body.series)) return false;
    C.chart(element, {
      grid: { left: 48, right: 16, top: 32, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: periods(body) },
      yAxis: { type: "value", minInterval: 1 },
      tooltip: { trigger: "axis", valueFormatter: fmt.int },
      series: ["opened", "resolved"].map((key) => ({ name: t(key), type: "bar", data: body.series.map((p) => p[key]) })),
    });
    return true;
  });

  C.load("hours", async (element) => {
    const body = await answer;
    if (body.series.every((p) => HOURS.every((key) => p[key] === null))) return false;
    C.chart(element, {
      grid: { left: 56, right: 16, top: 56, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: periods(body) },
      yAxis: { type: "value", name: t("hours_axis"), nameLocation: "end", nameGap: 12 },
      tooltip: { trigger: "axis", valueFormatter: fmt.hours },
      series: HOURS.map((key) => ({
        name: t(key),
        type: "line",
        connectNulls: false,
        symbolSize: 6,
        data: body.series.map((p) => p[key]),
        lineStyle: key === "p90_resolution_hours" ? { type: "dashed" } : undefined,
      })),
    });
    return true;
  });

  C.load("satisfaction", async (element) => {
    const body = await answer;
    if (body.series.every((p) => p.ratings === 0)) return false;
    const byPeriod = body.series;
    C.chart(element, {
      grid: { left: 56, right: 56, top: 56, bottom: 32 },
      legend: { top: 0 },
      xAxis: { type: "category", data: periods(body) },
      yAxis: [
        { type: "value", name: t("csat"), min: 0, max: 1, axisLabel: { formatter: (v) => fmt.share(v) } },
        { type: "value", name: t("score_axis"), min: 1, max: 5, interval: 1, splitLine: { show: false } },
      ],
      tooltip: {
        trigger: "axis",
        formatter: (items) => {
          const p = byPeriod[items[0].dataIndex];
          return [
            p.period,
            t("csat") + ": " + fmt.share(p.csat),
            t("avg_score") + ": " + fmt.decimal(p.avg_score),
            t("ratings") + ": " + fmt.int(p.ratings),
          ].map(escape).join("<br>");
        },
      },
      series: [
        { name: t("csat"), type: "bar", yAxisIndex: 0, data: byPeriod.map((p) => p.csat) },
        { name: t("avg_score"), type: "line", yAxisIndex: 1, connectNulls: false, symbolSize: 6, data: byPeriod.map((p) => p.avg_score) },
      ],
    });
    return true;
  });

  C.load("series", async (element) => {
    const body = await answer;
    if (quiet(body.series)) return false;
    const late = (row) => unfinished(row.period, body.watermark);
    C.table(element, [
      {
        key: "period",
        label: t("period"),
        text: true,
        decorate: (td, row) => {
          if (late(row)) {
            td.classList.add("incomplete");
            td.title = t("incomplete");
          }
        },
      },
      { key: "opened", label: t("opened"), format: fmt.int },
      { key: "resolved", label: t("resolved"), format: fmt.int },
      { key: "median_resolution_hours", label: t("median_resolution_hours"), format: fmt.hours },
      { key: "p90_resolution_hours", label: t("p90_resolution_hours"), format: fmt.hours },
      { key: "median_first_response_hours", label: t("median_first_response_hours"), format: fmt.hours },
      { key: "ratings", label: t("ratings"), format: fmt.int },
      { key: "avg_score", label: t("avg_score"), format: fmt.decimal },
      { key: "csat", label: t("csat"), format: fmt.share },
    ], body.series);
    if (body.series.some(late)) C.note(element, t("incomplete"));
    return body.series;
  });

  C.load("retention", async (element) => {
    const body = await answer;
    const buckets = body.retention_by_score;
    if (buckets.every((b) => b.retained_30d === null)) return false;
    C.chart(element, {
      grid: { left: 56, right: 16, top: 28, bottom: 32 },
      xAxis: { type: "category", data: buckets.map((b) => t("bucket_" + b.bucket)) },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => fmt.share(v) } },
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          const b = buckets[p.dataIndex];
          return [
            t("bucket_" + b.bucket),
            t("ratings") + ": " + fmt.int(b.ratings),
            t("mature") + ": " + fmt.int(b.mature),
            t("retained_30d") + ": " + fmt.share(b.retained_30d),
          ].map(escape).join("<br>");
        },
      },
      series: [
        {
          name: t("retained_30d"),
          type: "bar",
          barMaxWidth: 64,
          data: buckets.map((b) => b.retained_30d),
          label: {
            show: true,
            position: "top",
            formatter: (p) => {
              const b = buckets[p.dataIndex];
              return b.retained_30d === null ? "" : t("bar_label", { share: fmt.share(b.retained_30d), mature: fmt.int(b.mature) });
            },
          },
        },
      ],
    });
    return true;
  });

  C.load("retention-table", async (element) => {
    const body = await answer;
    const buckets = body.retention_by_score;
    if (buckets.every((b) => b.ratings === 0)) return false;
    C.table(element, [
      { key: "bucket", label: t("bucket"), text: true, format: (v) => t("bucket_" + v) },
      { key: "ratings", label: t("ratings"), format: fmt.int },
      { key: "mature", label: t("mature"), format: fmt.int },
      { key: "retained_30d", label: t("retained_30d"), format: fmt.share },
    ], buckets);
    C.note(element, t("retention_note", range));
    return buckets;
  });
})();
