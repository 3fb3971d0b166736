/* Users: search the user states (GET /v1/users/search) by id prefix, lifecycle, RFM segment,
 * country and orders, a page at a time; every user links to their own page. The API's `next`
 * cursor travels in the URL as `after`, so every page of results has its own address. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt, params } = C;

  /* The same names and defaults as the template's controls. */
  const query = { size: params.get("size") || "20" };
  for (const name of ["q", "lifecycle", "segment", "country", "min_orders", "after"]) {
    query[name] = params.get(name) || "";
  }

  const when = fmt.time;

  /* Country codes are upper case in the API; what is typed is sent so. */
  const form = document.querySelector("form[data-controls]");
  form.addEventListener("submit", () => {
    const country = form.elements.namedItem("country");
    country.value = country.value.trim().toUpperCase();
  });

  function pageUrl(after) {
    const next = new URLSearchParams(window.location.search);
    if (after) next.set("after", after);
    else next.delete("after");
    const search = next.toString();
    return window.location.pathname + (search ? "?" + search : "");
  }

  function showPager(next) {
    const first = document.querySelector("[data-pager] [data-first]");
    const following = document.querySelector("[data-pager] [data-next]");
    if (query.after) {
      first.href = pageUrl(null);
      first.hidden = false;
    }
    if (next) {
      following.href = pageUrl(next);
      following.dataset.after = next;
      following.hidden = false;
    }
  }

  function userLink(td, row) {
    const link = document.createElement("a");
    link.href = window.location.pathname.replace(/\/$/, "") + "/" + encodeURIComponent(row.user_id);
    link.textContent = row.user_id;
    td.replaceChildren(link);
  }

  C.load("results", async (element) => {
    const body = await C.api("/v1/users/search", query);
    showPager(body.next);
    if (body.users.length === 0) return false;
    const currencies = [...new Set(body.users.flatMap((user) => Object.keys(user.net_revenue)))].sort();
    return C.table(element, [
      { key: "user_id", label: t("user_id"), text: true, decorate: userLink },
      { key: "lifecycle", label: t("lifecycle"), text: true, format: (v) => (v ? t("lifecycle_" + v) : fmt.text(v)) },
      { key: "segment", label: t("segment"), text: true, format: (v) => (v ? t("segment_" + v) : fmt.text(v)) },
      { key: "country", label: t("country"), text: true },
      { key: "orders", label: t("orders"), format: fmt.int },
      ...currencies.map((currency) => ({
        key: "net_revenue:" + currency,
        label: t("net_revenue", { currency }),
        value: (row) => row.net_revenue[currency] ?? null,
        format: (v) => fmt.money(v, currency),
      })),
      { key: "last_active_at", label: t("last_active"), text: true, format: when },
    ], body.users);
  });
})();
