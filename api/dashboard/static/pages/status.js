/* Status (GET /v1/status): what an operator checks first (the largest lag, dead letters, halted
 * projections) as figures, then each projection's position, lag, state and dead letters, where
 * halted projections stopped, and the backends in use. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;
  const show = C.params.get("show") || "all";

  const answer = C.api("/v1/status");

  function needsAttention(projection) {
    return projection.state === "stopped" || projection.lag_events > 0 || projection.dead_letters.count > 0;
  }

  function shown(projections) {
    return show === "attention" ? projections.filter(needsAttention) : projections;
  }

  function seconds(v) {
    return v === null || v === undefined ? fmt.text(v) : t("seconds", { n: fmt.decimal(v) });
  }

  /* A count above zero is what needs looking at. */
  function alarm(td, row, value) {
    if (value > 0) td.classList.add("alarm");
  }

  function empty(element, message) {
    element.querySelector(".state.empty").textContent = message;
    return false;
  }

  C.load("health", async (element) => {
    const status = await answer;
    const projections = status.projections;
    const worst = (key) => projections.reduce((found, p) => (found === null || p[key] > found[key] ? p : found), null);
    const byEvents = worst("lag_events");
    const bySeconds = worst("lag_seconds");
    const lagEvents = byEvents ? byEvents.lag_events : 0;
    const lagSeconds = bySeconds ? bySeconds.lag_seconds : 0;
    const deadLetters = projections.reduce((sum, p) => sum + p.dead_letters.count, 0);
    const halted = projections.filter((p) => p.state === "stopped").length;
    const items = [
      { key: "halted", label: t("halted"), value: halted, text: fmt.int(halted), note: t("halted_note", { count: projections.length }) },
      { key: "lag_events", label: t("lag_events"), value: lagEvents, text: fmt.int(lagEvents),
        note: lagEvents > 0 ? t("worst", { name: byEvents.name }) : t("caught_up") },
      { key: "lag_seconds", label: t("lag_seconds"), value: lagSeconds, text: seconds(lagSeconds),
        note: lagSeconds > 0 ? t("worst", { name: bySeconds.name }) : t("caught_up") },
      { key: "dead_letters", label: t("dead_letters"), value: deadLetters, text: fmt.int(deadLetters), note: t("dead_letters_note") },
      { key: "head", label: t("head"), value: status.head, text: fmt.int(status.head), note: t("head_note") },
    ];
    C.figures(element, items);
    for (const item of items) {
      if (item.key === "head") continue;
      const tile = element.querySelector('[data-figure="' + item.key + '"]').closest(".figure");
      tile.classList.add(item.value > 0 ? "alarm" : "fine");
    }
    return items;
  });

  C.load("projections", async (element) => {
    const rows = shown((await answer).projections);
    if (rows.length === 0) return empty(element, t("nothing"));
    C.table(element, [
      { key: "name", label: t("projection"), text: true },
      { key: "state", label: t("state"), text: true, format: (v) => t(v) },
      { key: "position", label: t("position"), format: fmt.int },
      { key: "lag_events", label: t("behind_events"), format: fmt.int, decorate: alarm },
      { key: "lag_seconds", label: t("behind_seconds"), format: seconds, decorate: alarm },
      { key: "watermark", label: t("watermark"), text: true },
      { key: "dead_letters", label: t("count"), value: (row) => row.dead_letters.count, format: fmt.int, decorate: alarm },
      { key: "halted_at", label: t("halted_at"), value: (row) => (row.halt ? row.halt.position : null), format: fmt.int },
      { key: "since", label: t("since"), text: true, value: (row) => (row.halt ? row.halt.since : null) },
    ], rows);
    element.querySelectorAll("tbody tr").forEach((tr, i) => {
      if (rows[i].state === "stopped") tr.classList.add("halted");
    });
    return rows;
  });

  C.load("halts", async (element) => {
    const rows = (await answer).projections.flatMap((p) => p.halts.map((halt) => Object.assign({ name: p.name }, halt)));
    if (rows.length === 0) return empty(element, t("no_halts"));
    return C.table(element, [
      { key: "name", label: t("projection"), text: true },
      { key: "partition", label: t("partition"), format: (v) => (v < 0 ? t("in_process") : fmt.text(v)) },
      { key: "position", label: t("position"), format: fmt.int },
      { key: "error", label: t("error"), text: true, decorate: (td) => td.classList.add("error-text") },
      { key: "since", label: t("since"), text: true },
    ], rows);
  });

  C.load("dead-letters", async (element) => {
    const rows = shown((await answer).projections);
    if (rows.length === 0) return empty(element, t("nothing"));
    const kind = (name) => ({ key: name, label: t(name), value: (row) => row.dead_letters.by_kind[name], format: fmt.int, decorate: alarm });
    return C.table(element, [
      { key: "name", label: t("projection"), text: true },
      { key: "count", label: t("count"), value: (row) => row.dead_letters.count, format: fmt.int, decorate: alarm },
      kind("unreadable_message"),
      kind("invalid_event"),
      kind("document_rejected"),
      { key: "oldest_failed_at", label: t("oldest_failed_at"), text: true, value: (row) => row.dead_letters.oldest_failed_at },
    ], rows);
  });

  C.load("backends", async (element) => {
    const rows = Object.entries((await answer).backends).map(([component, backend]) => ({ component, backend }));
    if (rows.length === 0) return false;
    return C.table(element, [
      { key: "component", label: t("component"), text: true, format: (v) => t(v) },
      { key: "backend", label: t("backend"), text: true },
    ], rows);
  });
})();
