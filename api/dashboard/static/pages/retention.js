/* Retention: the cohort table of GET /v1/retention/cohorts as a heat-map triangle (each rate cell keeps
 * the API's rate in data-value; its shade follows the rate; cells whose period has not ended are
 * hatched), and the retention curve: per offset, the average of the cohorts' rates weighted by cohort
 * size over complete cells only (one line for all cohorts, plus one per breakdown value). The
 * cohort and return choices gain every scene and tool of GET /v1/features. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, cohorts } = C;

  const query = {
    granularity: C.params.get("granularity") || "week",
    cohort: C.params.get("cohort") || "first_seen",
    return: C.params.get("return") || "active",
    mode: C.params.get("mode") || "on",
    breakdown: C.params.get("breakdown") || "none",
  };

  function isFeature(name) {
    return name.startsWith("scene:") || name.startsWith("tool:");
  }

  /* Every feature used in the range joins the cohort and return choices, grouped as scenes and tools;
   * a feature asked for in the URL stays selected even when the range has not used it. */
  function addFeatures(report) {
    const names = report.features.map((row) => row.feature).sort();
    document.querySelectorAll("form[data-controls] select[data-features]").forEach((select) => {
      const current = select.value;
      select.querySelectorAll("optgroup").forEach((group) => group.remove());
      [...select.options].filter((option) => isFeature(option.value)).forEach((option) => option.remove());
      const all = isFeature(current) && !names.includes(current) ? names.concat([current]) : names;
      for (const [prefix, label] of [["scene:", t("scenes")], ["tool:", t("tools")]]) {
        const members = all.filter((name) => name.startsWith(prefix));
        if (members.length === 0) continue;
        const group = document.createElement("optgroup");
        group.label = label;
        for (const name of members) group.appendChild(new Option(name, name));
        select.appendChild(group);
      }
      select.value = current;
    });
  }

  const features = C.api("/v1/features", C.range()).then(addFeatures, () => null);
  const answer = C.api(
    "/v1/retention/cohorts",
    Object.assign(
      { granularity: query.granularity, cohort: query.cohort, return: query.return, mode: query.mode },
      query.breakdown === "none" ? {} : { breakdown: query.breakdown },
      C.range()
    )
  ).catch(unknownFeature);

  /* 422 unknown_feature says so in the page's language, with the features that are known. */
  function unknownFeature(error) {
    const details = (error.body && error.body.error && error.body.error.details) || [];
    if (error.status !== 422 || error.body.error.code !== "unknown_feature" || details.length === 0) throw error;
    const message = t("unknown_feature", {
      names: details.map((d) => query[d.field] || d.field).join(", "),
      known: (details[0].known || []).join(", ") || t("none"),
    });
    throw new C.ApiFailure(422, { error: { code: "unknown_feature", message: message } });
  }

  function offsetLabel(k) {
    return t(query.granularity, { n: k });
  }

  C.load("cohorts", async (element) => {
    const [body] = await Promise.all([answer, features]);
    const columns = [{ key: "cohort", label: t("cohort"), text: true }];
    if (body.breakdown) columns.push({ key: "breakdown_value", label: t(body.breakdown), text: true });
    columns.push({ key: "size", label: t("size"), format: fmt.int });
    return cohorts.heatMap(element, columns, body.cohorts, offsetLabel);
  });

  C.load("curve", async (element) => {
    const body = await answer;
    const rows = body.cohorts.filter((row) => row.size > 0);
    const width = cohorts.width(rows);
    if (rows.length === 0 || width === 0) return false;
    const lines = [{ name: t("all"), points: cohorts.curve(rows, width) }];
    if (body.breakdown) {
      const values = [...new Set(rows.map((row) => row.breakdown_value))].sort();
      for (const value of values) {
        lines.push({ name: value === null ? t("none") : value, points: cohorts.curve(rows.filter((row) => row.breakdown_value === value), width) });
      }
    }
    const labels = Array.from({ length: width }, (_, k) => offsetLabel(k));
    C.chart(element, {
      grid: { left: 56, right: 24, top: lines.length > 1 ? 36 : 16, bottom: 48 },
      legend: lines.length > 1 ? { top: 0, type: "scroll" } : { show: false },
      xAxis: { type: "category", data: labels, name: t("offset"), nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => fmt.share(v) } },
      tooltip: cohorts.curveTooltip((item) => item.seriesName),
      series: lines.map((line, i) => ({
        name: line.name,
        type: "line",
        connectNulls: false,
        lineStyle: { width: i === 0 ? 3 : 1.5 },
        symbolSize: i === 0 ? 6 : 4,
        data: line.points,
      })),
    });
    C.note(element, t("curve_note"));
    return true;
  });
})();
