/* Operations: every campaign (GET /v1/campaigns, each id linking to ?campaign=<id>), and the effect of
 * the chosen one (GET /v1/campaigns/<id>/effect; the first of the list when the URL names none):
 * its groups side by side with the uplift of treatment over control, the uplift of each share drawn
 * with its 95 % interval in percentage points, and of net revenue per member separately per currency.
 * A campaign the API does not know (404 campaign_not_found) leaves the effect sections in their error
 * state. */
(function () {
  "use strict";
  const C = window.Cohortline;
  const { t, fmt } = C;

  const SHARES = ["ordered_7d", "ordered_30d", "active_after_7d", "active_after_30d"];
  const asked = C.params.get("campaign") || "";

  /* A share difference in percentage points to the API's precision (4 places = 2 in points). */
  function points(v) {
    if (v === null || v === undefined) return fmt.text(v);
    return (v > 0 ? "+" : "") + fmt.decimal(v * 100) + " pt";
  }

  function signedMoney(v, currency) {
    if (v === null || v === undefined) return fmt.text(v);
    return (Number(v) > 0 ? "+" : "") + fmt.money(v, currency);
  }

  /* An RFC 3339 instant as "YYYY-MM-DD HH:MM UTC" (the API's instants are UTC). */
  function instant(v) {
    if (v === null || v === undefined) return fmt.text(v);
    const parsed = new Date(v);
    return Number.isNaN(parsed.getTime()) ? String(v) : parsed.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  const list = C.api("/v1/campaigns").then((body) => body.campaigns);
  const chosen = asked ? Promise.resolve(asked) : list.then((all) => (all.length ? all[0].campaign_id : null));
  const effect = chosen.then((id) =>
    id === null ? null : C.api("/v1/campaigns/" + encodeURIComponent(id) + "/effect")
  );

  /* The campaign choice: every campaign of the list; one named by the URL but unknown stays selected. */
  function fillChoice(campaigns, current) {
    const select = document.querySelector("form[data-controls] select[data-campaigns]");
    if (!select) return;
    select.replaceChildren();
    for (const campaign of campaigns) {
      select.appendChild(new Option(campaign.name + " (" + campaign.campaign_id + ")", campaign.campaign_id));
    }
    if (current && !campaigns.some((c) => c.campaign_id === current)) {
      select.appendChild(new Option(t("unknown", { id: current }), current));
    }
    if (current) select.value = current;
    select.disabled = select.options.length === 0;
  }

  C.load("campaigns", async (element) => {
    const campaigns = await list;
    const current = await chosen;
    fillChoice(campaigns, current);
    if (campaigns.length === 0) return false;
    C.table(element, [
      { key: "campaign_id", label: t("campaign_id"), text: true, decorate: C.choiceLink("campaign", current) },
      { key: "name", label: t("name"), text: true },
      { key: "kind", label: t("kind"), text: true, format: (v) => t("kind_" + v) },
      { key: "starts_at", label: t("starts_at"), text: true, format: instant },
      { key: "ends_at", label: t("ends_at"), text: true, format: (v) => (v ? instant(v) : t("no_end")) },
      { key: "ended", label: t("ended"), text: true, format: (v) => (v ? t("yes") : t("no")) },
      { key: "members_treatment", label: t("members_treatment"), value: (row) => row.members.treatment, format: fmt.int },
      { key: "members_control", label: t("members_control"), value: (row) => row.members.control, format: fmt.int },
    ], campaigns);
    element.querySelectorAll("tbody tr").forEach((tr) => {
      if (tr.cells[0].dataset.value === current) tr.classList.add("current");
    });
    return campaigns;
  });

  C.load("effect", async (element) => {
    const answer = await effect;
    if (answer === null) return false;
    const { campaign, groups } = answer;
    C.figures(element, [
      { key: "members:treatment", label: t("members_treatment"), value: groups.treatment.members, text: fmt.int(groups.treatment.members) },
      { key: "members:control", label: t("members_control"), value: groups.control.members, text: fmt.int(groups.control.members) },
      { key: "coupons_redeemed:treatment", label: t("coupons_treatment"), value: groups.treatment.coupons_redeemed, text: fmt.int(groups.treatment.coupons_redeemed) },
      { key: "coupons_redeemed:control", label: t("coupons_control"), value: groups.control.coupons_redeemed, text: fmt.int(groups.control.coupons_redeemed) },
    ]);
    const holder = element.querySelector("[data-body]");
    const title = document.createElement("p");
    title.className = "campaign-line";
    const name = document.createElement("strong");
    name.textContent = campaign.name;
    name.dataset.campaign = campaign.campaign_id;
    title.append(name, " (" + campaign.campaign_id + ") · ");
    title.append(t(campaign.ends_at ? "dates" : "dates_open", {
      kind: t("kind_" + campaign.kind),
      starts: instant(campaign.starts_at),
      ends: instant(campaign.ends_at),
    }));
    title.append(" · " + (campaign.ended ? t("status_ended") : t("status_running")));
    holder.prepend(title);
    const notes = document.createElement("ul");
    notes.className = "completeness";
    for (const days of ["7d", "30d"]) {
      const complete = answer["complete_" + days];
      const item = document.createElement("li");
      item.dataset.complete = days;
      item.dataset.value = String(complete);
      item.className = complete ? "complete" : "incomplete";
      item.textContent = t((complete ? "complete_" : "incomplete_") + days);
      notes.appendChild(item);
    }
    holder.appendChild(notes);
    return true;
  });

  /* One row per outcome: the two groups side by side and the uplift with its interval. */
  function outcomeRows(answer) {
    const { treatment, control } = answer.groups;
    const uplift = answer.uplift;
    const none = { value: null, ci95: null };
    const rows = [{ key: "members", currency: "", kind: "count", treatment: treatment.members, control: control.members, difference: none }];
    for (const key of SHARES) {
      rows.push({ key, currency: "", kind: "share", treatment: treatment[key], control: control[key], difference: uplift[key] || none });
    }
    rows.push({ key: "coupons_redeemed", currency: "", kind: "count", treatment: treatment.coupons_redeemed, control: control.coupons_redeemed, difference: none });
    const currencies = new Set([
      ...Object.keys(treatment.net_revenue_30d),
      ...Object.keys(control.net_revenue_30d),
      ...Object.keys(uplift.net_revenue_30d),
    ]);
    for (const currency of [...currencies].sort()) {
      rows.push({
        key: "net_revenue_30d",
        currency,
        kind: "money",
        treatment: treatment.net_revenue_30d[currency] ?? null,
        control: control.net_revenue_30d[currency] ?? null,
        difference: uplift.net_revenue_30d[currency] || none,
      });
    }
    return rows;
  }

  function incomplete(answer, key) {
    if (key.endsWith("_7d")) return !answer.complete_7d;
    if (key.endsWith("_30d")) return !answer.complete_30d;
    return false;
  }

  C.load("groups", async (element) => {
    const answer = await effect;
    if (answer === null) return false;
    const rows = outcomeRows(answer);
    const shown = (row, v) => (row.kind === "count" ? fmt.int(v) : row.kind === "share" ? fmt.share(v) : fmt.money(v, row.currency));
    const difference = (row, v) => (row.kind === "share" ? points(v) : row.kind === "money" ? signedMoney(v, row.currency) : fmt.text(v));
    const mark = (td, row) => {
      if (incomplete(answer, row.key)) {
        td.classList.add("incomplete");
        td.title = t("hatched");
      }
    };
    C.table(element, [
      { key: "key", label: t("metric"), text: true, format: (v) => t(v) },
      { key: "currency", label: t("currency"), text: true },
      { key: "treatment", label: t("treatment"), format: (v, row) => shown(row, v), decorate: mark },
      { key: "control", label: t("control"), format: (v, row) => shown(row, v), decorate: mark },
      { key: "uplift", label: t("uplift_value"), value: (row) => row.difference.value, format: (v, row) => difference(row, v), decorate: mark },
      { key: "ci_low", label: t("ci_low"), value: (row) => (row.difference.ci95 ? row.difference.ci95[0] : null), format: (v, row) => difference(row, v), decorate: mark },
      { key: "ci_high", label: t("ci_high"), value: (row) => (row.difference.ci95 ? row.difference.ci95[1] : null), format: (v, row) => difference(row, v), decorate: mark },
    ], rows);
    if (rows.some((row) => incomplete(answer, row.key))) {
      C.note(element, t("hatched") + " " + [
        answer.complete_7d ? "" : t("incomplete_7d"),
        answer.complete_30d ? "" : t("incomplete_30d"),
      ].filter(Boolean).join(" "));
    }
    return rows;
  });

  /* Series for rows [{label, value, low, high}] (in the axis's unit) on one grid: the interval as an
   * error bar (data [row, low, high]) and the value as a dot (data [value, row]). */
  function errorSeries(items, axis, format) {
    const zero = { silent: true, symbol: "none", label: { show: false }, lineStyle: { color: "#64748b", type: "solid", width: 1 }, data: [{ xAxis: 0 }] };
    return [
      C.errorBars(items.map((item) => (item.low === null ? null : [item.low, item.high])), {
        horizontal: true,
        color: "#2563eb",
        width: 2,
        cap: 0.2,
        capMax: 8,
        name: t("ci_low"),
        xAxisIndex: axis,
        yAxisIndex: axis,
        z: 2,
      }),
      {
        type: "scatter",
        name: t("uplift_value"),
        xAxisIndex: axis,
        yAxisIndex: axis,
        symbolSize: 12,
        itemStyle: { color: "#f97316" },
        data: items.map((item, i) => (item.value === null ? null : [item.value, i])).filter(Boolean),
        label: { show: true, position: "top", formatter: (p) => format(items[p.data[1]]) },
        markLine: zero,
        z: 3,
      },
    ];
  }

  function tooltipText(item, format, interval) {
    const lines = [item.label, t("uplift_value") + ": " + format(item)];
    lines.push(item.low === null ? t("no_interval") : t("interval", interval(item)));
    return lines.map(C.escape).join("<br>");
  }

  C.load("uplift", async (element) => {
    const answer = await effect;
    if (answer === null) return false;
    const items = SHARES.map((key) => {
      const d = answer.uplift[key] || { value: null, ci95: null };
      return {
        key,
        label: t(key),
        exact: d.value,
        value: d.value === null ? null : d.value * 100,
        low: d.ci95 ? d.ci95[0] * 100 : null,
        high: d.ci95 ? d.ci95[1] * 100 : null,
        exactLow: d.ci95 ? d.ci95[0] : null,
        exactHigh: d.ci95 ? d.ci95[1] : null,
      };
    });
    if (items.every((item) => item.value === null)) return false;
    const format = (item) => points(item.exact);
    const interval = (item) => ({ low: points(item.exactLow), high: points(item.exactHigh) });
    C.chart(element, {
      grid: { left: 200, right: 48, top: 24, bottom: 52 },
      xAxis: {
        type: "value",
        name: t("points_axis"),
        nameLocation: "middle",
        nameGap: 30,
        axisLabel: { formatter: (v) => (v > 0 ? "+" : "") + fmt.decimal(v) },
      },
      yAxis: { type: "category", inverse: true, data: items.map((item) => item.label) },
      tooltip: {
        trigger: "item",
        formatter: (p) => tooltipText(items[p.seriesType === "custom" ? p.data[0] : p.data[1]], format, interval),
      },
      series: errorSeries(items, 0, format),
    });
    C.note(element, t("chart_note"));
    return true;
  });

  C.load("uplift-money", async (element) => {
    const answer = await effect;
    if (answer === null) return false;
    const currencies = Object.keys(answer.uplift.net_revenue_30d).sort();
    const byCurrency = currencies.map((currency) => {
      const d = answer.uplift.net_revenue_30d[currency];
      return {
        currency,
        label: t("net_revenue_30d") + " · " + currency,
        exact: d.value,
        value: d.value === null ? null : Number(d.value),
        low: d.ci95 ? Number(d.ci95[0]) : null,
        high: d.ci95 ? Number(d.ci95[1]) : null,
        exactLow: d.ci95 ? d.ci95[0] : null,
        exactHigh: d.ci95 ? d.ci95[1] : null,
      };
    });
    if (byCurrency.every((item) => item.value === null)) return false;
    const ROW = 110;
    element.querySelector("[data-chart]").style.height = 16 + ROW * byCurrency.length + "px";
    const format = (item) => signedMoney(item.exact, item.currency);
    const interval = (item) => ({ low: signedMoney(item.exactLow, item.currency), high: signedMoney(item.exactHigh, item.currency) });
    C.chart(element, {
      grid: byCurrency.map((item, i) => ({ left: 120, right: 48, top: 24 + ROW * i, height: ROW - 72 })),
      xAxis: byCurrency.map((item, i) => ({
        type: "value",
        gridIndex: i,
        name: t("per_member", { currency: item.currency }),
        nameLocation: "middle",
        nameGap: 28,
        axisLabel: { formatter: (v) => (v > 0 ? "+" : "") + fmt.decimal(v) },
      })),
      yAxis: byCurrency.map((item, i) => ({ type: "category", gridIndex: i, data: [item.currency] })),
      tooltip: {
        trigger: "item",
        formatter: (p) => tooltipText(byCurrency[Math.floor(p.seriesIndex / 2)], format, interval),
      },
      series: byCurrency.flatMap((item, i) => errorSeries([item], i, format)),
    });
    C.note(element, t("chart_note"));
    return true;
  });
})();
