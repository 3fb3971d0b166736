/* Series per period as the activity, value and service pages show them: when a period ends, whether
 * it is complete (it ended at or before the data's watermark, as the API's own `complete`: metrics.md
 * "Time"), and how a period not yet complete looks: a faded bar, a hollow point, a hatched table cell,
 * a line in the tooltip. A page whose tooltips use it defines the message "not_complete". */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, escape } = C;

  const DAY_MS = 86400000;

  /* When a period labelled `label` ("2025-03-03", or "2025-03" for a month) of `length` (day, week
   * or month) ends: exclusive, in ms since the epoch, UTC. */
  function end(label, length) {
    const [year, month, day] = label.split("-").map(Number);
    if (length === "month") return Date.UTC(year, month, 1);
    return Date.UTC(year, month - 1, day) + (length === "week" ? 7 : 1) * DAY_MS;
  }

  /* The series' periods, each with `complete` (none is without a watermark). */
  function withCompleteness(series, length, watermark) {
    const mark = watermark ? Date.parse(watermark) : null;
    return series.map((p) => Object.assign({ complete: mark !== null && end(p.period, length) <= mark }, p));
  }

  /* A bar of a period not yet complete is faded; a line's point of one is hollow. */
  function bar(value, row) {
    return row.complete ? value : { value, itemStyle: { opacity: 0.45 } };
  }

  function line(value, row) {
    return row.complete ? value : { value, symbol: "emptyCircle", symbolSize: 9 };
  }

  /* A table column's decorate: a cell of a period not yet complete is hatched and says so. */
  function markIncomplete(td, row) {
    if (!row.complete) {
      td.classList.add("incomplete");
      td.title = t("incomplete");
    }
  }

  /* A tooltip's first lines: the period, and whether it is complete. */
  function heading(row) {
    return "<b>" + escape(row.period) + "</b>" + (row.complete ? "" : "<br><i>" + escape(t("not_complete")) + "</i>");
  }

  /* An axis tooltip listing each series' exact value (format(item, row) → text) under the heading. */
  function axisTooltip(rows, format) {
    return {
      trigger: "axis",
      formatter: (items) => {
        const list = Array.isArray(items) ? items : [items];
        const row = rows[list[0].dataIndex];
        let html = heading(row);
        for (const item of list) {
          html += "<br>" + item.marker + escape(item.seriesName) + ": <b>" + escape(format(item, row)) + "</b>";
        }
        return html;
      },
    };
  }

  C.periods = { end, withCompleteness, bar, line, markIncomplete, heading, axisTooltip };
})();
