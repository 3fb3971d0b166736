/* Cohort retention as the retention page and the scenes-and-tools page show it (the cohorts of GET
 * /v1/retention/cohorts): the heat-map triangle (each rate cell keeps the API's rate in data-value;
 * its shade follows the rate; cells whose period has not ended are hatched and say so in their title;
 * a legend under the table) and the retention curve (per offset, the average of the cohorts' rates
 * weighted by cohort size, over complete cells only). A page using it defines the messages "cell"
 * ({retained} of {size}) and "legend". */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;

  /* How many offsets the longest cohort has. */
  function width(rows) {
    return rows.reduce((most, row) => Math.max(most, row.rates.length), 0);
  }

  /* Background shade of a rate cell: the darker the bluer; light text on the darkest. */
  function shade(td, rate) {
    td.style.backgroundColor = "rgba(37, 99, 235, " + (0.06 + 0.84 * rate).toFixed(3) + ")";
    if (rate >= 0.55) td.style.color = "#fff";
  }

  function cellTitle(row, k) {
    const text = fmt.share(row.rates[k]) + " · " + t("cell", { retained: fmt.int(row.values[k]), size: fmt.int(row.size) });
    return row.complete[k] ? text : text + "\n" + t("incomplete");
  }

  /* The heat map: C.table of the `leading` columns (cohort, size...) and one column per offset
   * (headed `label(k)`, key offset_<k>), with the legend under it. */
  function heatMap(element, leading, rows, label) {
    const columns = leading.slice();
    for (let k = 0; k < width(rows); k += 1) {
      columns.push({
        key: "offset_" + k,
        label: label(k),
        value: (row) => (k < row.rates.length ? row.rates[k] : null),
        format: (v) => (v === null ? "" : fmt.share(v)),
        decorate: (td, row, v) => {
          if (v === null) return;
          td.classList.add("rate");
          shade(td, v);
          td.title = cellTitle(row, k);
          if (!row.complete[k]) td.classList.add("incomplete");
        },
      });
    }
    const shown = C.table(element, columns, rows);
    if (shown.length) C.note(element.querySelector("[data-table]"), t("legend"));
    return shown;
  }

  /* Per offset 0..width-1: the cohorts' retained users over their sizes, complete cells only, as
   * chart points {value, retained, size} (null where no cohort is complete). */
  function curve(rows, width) {
    const points = [];
    for (let k = 0; k < width; k += 1) {
      let retained = 0;
      let size = 0;
      for (const row of rows) {
        if (k < row.values.length && row.complete[k]) {
          retained += row.values[k];
          size += row.size;
        }
      }
      points.push(size === 0 ? null : { value: Math.round((retained / size) * 10000) / 10000, retained, size });
    }
    return points;
  }

  /* The curve chart's tooltip: the offset, then per line `name(item)`, its rate and its users. */
  function curveTooltip(name) {
    return {
      trigger: "axis",
      formatter: (items) =>
        C.escape(items.length ? items[0].axisValue : "") +
        items
          .filter((item) => item.data)
          .map(
            (item) =>
              "<br>" + item.marker + C.escape(name(item)) + ": <b>" + C.escape(fmt.share(item.data.value)) + "</b> (" +
              C.escape(t("cell", { retained: fmt.int(item.data.retained), size: fmt.int(item.data.size) })) + ")"
          )
          .join(""),
    };
  }

  C.cohorts = { width, shade, heatMap, curve, curveTooltip };
})();
