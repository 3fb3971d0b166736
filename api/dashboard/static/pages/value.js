/* Value: revenue per period and currency (GET /v1/value/revenue), cumulative net revenue per cohort
 * member by offset (GET /v1/value/ltv) and repurchase over the range (GET /v1/orders/repurchase).
 * Money is never converted or added across currencies: each currency gets its own chart panel and
 * its own table rows. LTV takes no days: with granularity=day it is shown by week, and says so. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, params, escape, periods } = C;
  const { markIncomplete } = periods;

  /* The same names and defaults as the template's controls. */
  const GRANULARITIES = ["day", "week", "month"];
  const COHORTS = ["first_seen", "signup", "first_order"];
  const granularity = GRANULARITIES.includes(params.get("granularity")) ? params.get("granularity") : "week";
  const ltvGranularity = granularity === "day" ? "week" : granularity;
  const cohort = COHORTS.includes(params.get("cohort")) ? params.get("cohort") : "first_seen";

  /* A small note above a section's content. */
  const note = (element, text) => C.note(element, text, { top: true });

  /* One chart panel per currency, one above the other; `build(currency, index)` gives the panel's
   * x axis data, y axis and series. */
  function currencyPanels(element, currencies, build) {
    const TOP = 56; // room for a legend row above the first panel's axis name
    const PANEL = 250;
    const GAP = 56;
    element.querySelector("[data-chart]").style.height = TOP + currencies.length * (PANEL + GAP) - GAP + 30 + "px";
    const option = { grid: [], xAxis: [], yAxis: [], series: [] };
    currencies.forEach((currency, index) => {
      const panel = build(currency, index);
      option.grid.push({ left: 80, right: 24, top: TOP + index * (PANEL + GAP), height: PANEL - 24 });
      option.xAxis.push(Object.assign({ type: "category", gridIndex: index }, panel.xAxis));
      option.yAxis.push(
        Object.assign(
          { type: "value", gridIndex: index, name: currency, nameTextStyle: { align: "right", fontWeight: "bold" },
            axisLabel: { formatter: (v) => (Number.isInteger(v) ? fmt.int(v) : fmt.decimal(v)) } },
          panel.yAxis
        )
      );
      for (const series of panel.series) option.series.push(Object.assign({ xAxisIndex: index, yAxisIndex: index }, series));
    });
    if (currencies.length > 1) note(element, t("one_currency_each"));
    return option;
  }

  const range = C.range();
  const revenue = C.api("/v1/value/revenue", Object.assign({ granularity }, range)).then((body) =>
    periods.withCompleteness(body.series, granularity, body.watermark)
  );
  const ltv = C.api("/v1/value/ltv", Object.assign({ granularity: ltvGranularity, cohort }, range));
  const repurchase = C.api("/v1/orders/repurchase", range);
  for (const answer of [revenue, ltv, repurchase]) answer.catch(() => {});

  const days = (v) => (v === null || v === undefined ? fmt.decimal(v) : t("days_value", { value: fmt.decimal(v) }));

  C.load("repurchase", async (element) => {
    const body = await repurchase;
    return C.figures(element, [
      { key: "customers", label: t("customers"), value: body.customers, text: fmt.int(body.customers), note: t("customers_note") },
      { key: "repeat_customers", label: t("repeat_customers"), value: body.repeat_customers, text: fmt.int(body.repeat_customers), note: t("repeat_note") },
      { key: "repurchase_rate", label: t("repurchase_rate"), value: body.repurchase_rate, text: fmt.share(body.repurchase_rate), note: t("repurchase_note") },
      { key: "median_days_between_orders", label: t("median_days"), value: body.median_days_between_orders, text: days(body.median_days_between_orders), note: t("gap_note") },
      { key: "p90_days_between_orders", label: t("p90_days"), value: body.p90_days_between_orders, text: days(body.p90_days_between_orders), note: t("gap_note") },
    ]);
  });

  const currenciesOf = (objects) => [...new Set(objects.flatMap((o) => Object.keys(o.currencies)))].sort();

  const REVENUE = [
    { key: "paid", type: "bar" },
    { key: "refunded", type: "bar" },
    { key: "net", type: "line" },
  ];

  C.load("revenue", async (element) => {
    const rows = await revenue;
    const currencies = currenciesOf(rows);
    if (currencies.length === 0) return false;
    const option = currencyPanels(element, currencies, (currency) => ({
      xAxis: { data: rows.map((p) => p.period) },
      series: REVENUE.map(({ key, type }) => ({
        id: currency + ":" + key,
        name: t(key),
        type,
        symbol: "circle",
        data: rows.map((p) => {
          const figures = p.currencies[currency];
          const value = figures ? Number(figures[key]) : 0;
          return type === "bar" ? periods.bar(value, p) : periods.line(value, p);
        }),
      })),
    }));
    C.chart(element, Object.assign(option, {
      color: ["#2563eb", "#dc2626", "#16a34a"],
      legend: { top: 0 },
      axisPointer: { link: [{ xAxisIndex: "all" }] },
      tooltip: periods.axisTooltip(rows, (item, row) => {
        const [currency, key] = item.seriesId.split(":");
        const figures = row.currencies[currency];
        return figures ? fmt.money(figures[key], currency) : fmt.text(null);
      }),
    }));
    if (rows.some((p) => !p.complete)) note(element, t("faded"));
    return true;
  });

  /* One row per period and currency; a period without money keeps one row (no currency) for its
   * active users. */
  function revenueRows(rows) {
    return rows.flatMap((p) => {
      const currencies = Object.keys(p.currencies).sort();
      if (currencies.length === 0) {
        return [{ period: p.period, currency: null, paid: null, refunded: null, net: null, orders_paid: null,
          arpu: null, active_users: p.active_users, complete: p.complete }];
      }
      return currencies.map((currency) =>
        Object.assign({ period: p.period, currency, active_users: p.active_users, complete: p.complete }, p.currencies[currency])
      );
    });
  }

  C.load("revenue-table", async (element) => {
    const rows = revenueRows(await revenue);
    const money = (v, row) => fmt.money(v, row.currency);
    return C.table(element, [
      { key: "period", label: t("period"), text: true, decorate: markIncomplete },
      { key: "currency", label: t("currency"), text: true, format: (v) => (v === null ? t("none") : v), decorate: markIncomplete },
      { key: "paid", label: t("paid"), format: money, decorate: markIncomplete },
      { key: "refunded", label: t("refunded"), format: money, decorate: markIncomplete },
      { key: "net", label: t("net"), format: money, decorate: markIncomplete },
      { key: "orders_paid", label: t("orders_paid"), format: fmt.int, decorate: markIncomplete },
      { key: "arpu", label: t("arpu"), format: money, decorate: markIncomplete },
      { key: "active_users", label: t("active_users"), format: fmt.int, decorate: markIncomplete },
    ], rows);
  });

  const offsetLabel = (n) => t("offset_" + ltvGranularity, { n });

  C.load("ltv", async (element) => {
    const body = await ltv;
    if (granularity === "day") note(element, t("weekly_instead"));
    const currencies = currenciesOf(body.cohorts);
    if (currencies.length === 0) return false;
    const longest = Math.max(...body.cohorts.flatMap((c) => Object.values(c.currencies).map((v) => v.length)));
    const offsets = Array.from({ length: longest }, (_, k) => k);
    const option = currencyPanels(element, currencies, (currency) => ({
      xAxis: { data: offsets.map(String), name: t("since_" + ltvGranularity), nameLocation: "middle", nameGap: 26, boundaryGap: false },
      series: body.cohorts
        .filter((c) => c.currencies[currency])
        .map((c) => ({
          name: c.cohort,
          type: "line",
          symbol: "circle",
          symbolSize: 5,
          data: c.currencies[currency].map((amount, k) => ({
            value: Number(amount),
            amount,
            currency,
            cohort: c,
            offset: k,
            symbol: c.complete[k] ? "circle" : "emptyCircle",
            symbolSize: c.complete[k] ? 5 : 9,
          })),
        })),
    }));
    C.chart(element, Object.assign(option, {
      legend: { top: 0, type: "scroll" },
      tooltip: {
        trigger: "item",
        formatter: (item) => {
          const point = item.data;
          return item.marker + "<b>" + escape(point.cohort.cohort) + "</b> · " + escape(t("members", { count: fmt.int(point.cohort.size) })) +
            "<br>" + escape(offsetLabel(point.offset)) + ": <b>" + escape(fmt.money(point.amount, point.currency)) + "</b>" +
            (point.cohort.complete[point.offset] ? "" : "<br><i>" + escape(t("not_complete")) + "</i>");
        },
      },
    }));
    if (body.cohorts.some((c) => c.complete.includes(false))) note(element, t("hollow"));
    return true;
  });

  C.load("ltv-table", async (element) => {
    const body = await ltv;
    if (body.cohorts.length === 0) return false;
    const rows = body.cohorts.flatMap((c) => {
      const currencies = Object.keys(c.currencies).sort();
      if (currencies.length === 0) return [{ cohort: c.cohort, currency: null, size: c.size, values: [], complete: c.complete }];
      return currencies.map((currency) => ({ cohort: c.cohort, currency, size: c.size, values: c.currencies[currency], complete: c.complete }));
    });
    const longest = Math.max(...body.cohorts.map((c) => c.complete.length));
    return C.table(element, [
      { key: "cohort", label: t("cohort"), text: true },
      { key: "currency", label: t("currency"), text: true, format: (v) => (v === null ? t("none") : v) },
      { key: "size", label: t("size"), format: fmt.int },
      ...Array.from({ length: longest }, (_, k) => ({
        key: "offset:" + k,
        label: offsetLabel(k),
        value: (row) => row.values[k] ?? null,
        format: (v, row) => fmt.money(v, row.currency),
        decorate: (td, row) => {
          if (row.complete[k] === false) {
            td.classList.add("incomplete");
            td.title = t("incomplete");
          }
        },
      })),
    ], rows);
  });
})();
