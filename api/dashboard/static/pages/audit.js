/* Audit (auditors): the global log page by page (GET /v1/audit/log) and, on request, the walk of the
 * tamper-evidence chain (GET /v1/audit/verify). */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;
  const PAGE = 50;

  C.load("log", async (element) => {
    let after = Number(C.params.get("after"));
    if (!C.params.has("after") || !Number.isInteger(after) || after < 0) {
      const status = await C.api("/v1/status");
      after = Math.max(status.head - PAGE, 0);
    }
    const body = await C.api("/v1/audit/log", { after: after, limit: PAGE });
    return C.table(element, [
      { key: "position", label: t("position"), format: fmt.int },
      { key: "type", label: t("type"), text: true },
      { key: "user_id", label: t("user"), text: true },
      { key: "occurred_at", label: t("occurred_at"), text: true },
      { key: "recorded_at", label: t("recorded_at"), text: true },
      { key: "hash", label: t("hash"), text: true, format: (v) => (v ? v.slice(0, 12) + "…" : "–"),
        decorate: (td, row, v) => { if (v) td.title = v; } },
    ], body.events);
  });

  const verify = C.section("verify");
  verify.querySelector("[data-verify]").addEventListener("click", () =>
    C.load("verify", async (element) => {
      const body = await C.api("/v1/audit/verify");
      const items = [
        { key: "ok", label: body.ok ? t("ok") : t("broken"), value: body.ok, text: body.ok ? t("yes") : t("no") },
        { key: "events", label: t("events"), value: body.events, text: fmt.int(body.events) },
      ];
      if (body.ok) items.push({ key: "head_hash", label: t("head_hash"), value: body.head_hash, text: body.head_hash.slice(0, 16) + "…" });
      else items.push({ key: "broken_at", label: t("broken_at"), value: body.broken_at, text: fmt.int(body.broken_at), note: body.reason });
      return C.figures(element, items);
    })
  );
})();
