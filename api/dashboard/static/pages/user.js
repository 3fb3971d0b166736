/* A user's page: their state at the watermark (GET /v1/users/<id>) and, for auditors only, their
 * stream's events (GET /v1/audit/streams/user/<id>/events). Everything shown is what the API
 * answers at this moment (after an erasure it answers with the personal fields erased); nothing is
 * kept in the browser beyond the page. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;
  const userId = C.config.userId;
  const path = encodeURIComponent(userId);

  const when = fmt.time;
  const day = fmt.day;

  function isUnknown(error) {
    return error instanceof C.ApiFailure && error.status === 404 && error.body && error.body.error
      && error.body.error.code === "user_not_found";
  }

  /* The section says the user is unknown (its empty state), and so does the page. */
  function unknown(element) {
    document.querySelector("[data-unknown]").hidden = false;
    element.querySelector(".state.empty").textContent = t("unknown");
    return false;
  }

  function empty(element, message) {
    element.querySelector(".state.empty").textContent = message;
    return false;
  }

  const answer = C.api("/v1/users/" + path);

  /* The state, or null when the API does not know the user (other failures are thrown). */
  async function state() {
    try {
      return await answer;
    } catch (error) {
      if (isUnknown(error)) return null;
      throw error;
    }
  }

  C.load("value", async (element) => {
    const user = await state();
    if (user === null) return unknown(element);
    const currencies = Object.keys(user.net_revenue).sort();
    const revenue = currencies.length
      ? currencies.map((currency) => ({
        key: "net_revenue:" + currency,
        label: t("net_revenue", { currency }),
        value: user.net_revenue[currency],
        text: fmt.money(user.net_revenue[currency], currency),
      }))
      : [{ key: "net_revenue", label: t("net_revenue_none"), value: null, text: fmt.text(null) }];
    return C.figures(element, [
      { key: "orders", label: t("orders"), value: user.orders, text: fmt.int(user.orders) },
      ...revenue,
      { key: "points", label: t("points"), value: user.points, text: fmt.int(user.points) },
      { key: "open_tickets", label: t("open_tickets"), value: user.open_tickets, text: fmt.int(user.open_tickets) },
    ]);
  });

  C.load("rfm", async (element) => {
    const user = await state();
    if (user === null) return unknown(element);
    const rfm = user.rfm;
    if (!rfm) return empty(element, t("no_orders"));
    const score = (key) => ({ key: "rfm_" + key, label: t(key), value: rfm[key], text: fmt.int(rfm[key]), note: t("of_five") });
    const items = [
      { key: "rfm_segment", label: t("segment"), value: rfm.segment, text: t("segment_" + rfm.segment) },
      score("r"),
      score("f"),
      score("m"),
      { key: "rfm_recency_days", label: t("recency_days"), value: rfm.recency_days, text: fmt.int(rfm.recency_days) },
      { key: "rfm_frequency", label: t("frequency"), value: rfm.frequency, text: fmt.int(rfm.frequency) },
    ];
    items.push({
      key: "rfm_monetary",
      label: t("monetary", { currency: rfm.currency || "–" }),
      value: rfm.monetary,
      text: rfm.currency ? fmt.money(rfm.monetary, rfm.currency) : fmt.decimal(Number(rfm.monetary)),
    });
    return C.figures(element, items);
  });

  /* A definition list whose values keep the API's exact value in data-value (and data-figure). */
  function definitions(element, items) {
    const holder = element.querySelector("[data-body]");
    const list = document.createElement("dl");
    list.className = "state-list";
    for (const item of items) {
      const term = document.createElement("dt");
      term.textContent = item.label;
      const value = document.createElement("dd");
      value.textContent = item.text;
      value.dataset.figure = item.key;
      value.dataset.value = item.value === null || item.value === undefined ? "" : String(item.value);
      list.append(term, value);
    }
    holder.replaceChildren(list);
    return items;
  }

  C.load("state", async (element) => {
    const user = await state();
    if (user === null) return unknown(element);
    const time = (key) => ({ key, label: t(key), value: user[key], text: when(user[key]) });
    const text = (key, shown) => ({ key, label: t(key), value: user[key], text: shown ? shown(user[key]) : fmt.text(user[key]) });
    return definitions(element, [
      time("first_seen_at"),
      time("signup_at"),
      time("first_order_at"),
      time("last_order_at"),
      time("last_active_at"),
      text("lifecycle", (v) => (v ? t("lifecycle_" + v) : fmt.text(v))),
      text("resurrected_on", day),
      text("segment", (v) => (v ? t("segment_" + v) : fmt.text(v))),
      text("tier"),
      text("country"),
      text("channel"),
      text("last_position"),
    ]);
  });

  if (C.config.canAudit) {
    C.load("events", async (element) => {
      if ((await state()) === null) return unknown(element);
      let body;
      try {
        body = await C.api("/v1/audit/streams/user/" + path + "/events");
      } catch (error) {
        if (error instanceof C.ApiFailure && error.status === 404) return empty(element, t("no_events"));
        throw error;
      }
      if (body.events.length === 0) return empty(element, t("no_events"));
      return C.table(element, [
        { key: "position", label: t("position"), format: fmt.text },
        { key: "version", label: t("version"), format: fmt.text },
        { key: "type", label: t("type"), text: true },
        { key: "occurred_at", label: t("occurred_at"), text: true },
        { key: "recorded_at", label: t("recorded_at"), text: true },
        { key: "data", label: t("data"), text: true, value: (row) => JSON.stringify(row.data),
          decorate: (td) => td.classList.add("json") },
      ], body.events);
    });
  }
})();
