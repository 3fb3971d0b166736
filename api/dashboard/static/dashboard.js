/* Cohortline dashboard: what every page shares. A page script (pages/<name>.js) calls
 * Cohortline.load(section, work) for each of its sections; `work` reads the JSON API and fills the
 * section with Cohortline.table / Cohortline.chart / Cohortline.figures. Every shown number keeps its
 * exact value in data-value, which the CSV export and the browser tests read. */
(function () {
  "use strict";

  function readJson(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : {};
  }

  const config = readJson("page-config");
  const messages = Object.assign({}, readJson("messages-common"), readJson("messages-page"));
  const params = new URLSearchParams(window.location.search);

  function t(key, vars) {
    let text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  /* Numbers follow the browser's own locale when it speaks the page's language (en-GB, en-US,
   * zh-CN, zh-TW...), else the page language's default. */
  const numberLocale = (function () {
    const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return browser.split("-")[0] === config.lang ? browser : config.numberLocale;
  })();
  const integers = new Intl.NumberFormat(numberLocale, { maximumFractionDigits: 0 });
  const decimals = new Intl.NumberFormat(numberLocale, { minimumFractionDigits: 1, maximumFractionDigits: 2 });
  const percents = new Intl.NumberFormat(numberLocale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 2 });
  const points = new Intl.NumberFormat(numberLocale, { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "always" });
  const DASH = "–";
  const times = new Intl.DateTimeFormat(numberLocale, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  const days = new Intl.DateTimeFormat(numberLocale, { dateStyle: "medium", timeZone: "UTC" });

  const fmt = {
    int: (v) => (v === null || v === undefined ? DASH : integers.format(v)),
    decimal: (v) => (v === null || v === undefined ? DASH : decimals.format(v)),
    share: (v) => (v === null || v === undefined ? DASH : percents.format(v)),
    /* A difference of two shares, in percentage points. */
    points: (v) => (v === null || v === undefined ? DASH : points.format(v * 100) + " pt"),
    hours: (v) => (v === null || v === undefined ? DASH : decimals.format(v) + " h"),
    /* Money stays a decimal string in data-value; the display rounds nothing away (2 places). */
    money: (v, currency) =>
      v === null || v === undefined
        ? DASH
        : new Intl.NumberFormat(numberLocale, { style: "currency", currency: currency, currencyDisplay: "code" }).format(Number(v)),
    text: (v) => (v === null || v === undefined || v === "" ? DASH : String(v)),
    /* An RFC 3339 time of the API, in UTC (the time zone the API answers in). */
    time: (v) => (v === null || v === undefined ? DASH : times.format(new Date(v)) + " UTC"),
    /* A YYYY-MM-DD day of the API. */
    day: (v) => (v === null || v === undefined ? DASH : days.format(new Date(v + "T00:00:00Z"))),
  };

  class ApiFailure extends Error {
    constructor(status, body) {
      const error = body && body.error;
      super(error ? error.message + " (" + error.code + ")" : "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, query) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status !== 200) throw new ApiFailure(response.status, body);
    return body;
  }

  /* The period query every ranged route takes. */
  function range() {
    return config.period ? { from: config.period.from, to: config.period.to } : {};
  }

  function section(name) {
    const element = document.querySelector('[data-section="' + name + '"]');
    if (!element) throw new Error("no section " + name);
    return element;
  }

  let pending = 0;
  const started = performance.now();

  function settled() {
    pending -= 1;
    if (pending === 0) {
      window.cohortlineReadyMs = performance.now();
      document.body.dataset.ready = "true";
    }
  }

  /* Fill one section: `work(element)` resolves to false (or an empty array) when there is nothing
   * to show. */
  async function load(name, work) {
    const element = section(name);
    pending += 1;
    element.dataset.state = "loading";
    element.setAttribute("aria-busy", "true");
    try {
      const shown = await work(element);
      element.dataset.state = shown === false || (Array.isArray(shown) && shown.length === 0) ? "empty" : "ready";
      /* A chart drawn while its section was still hidden (loading) measured no width. */
      element.querySelectorAll("[data-chart]").forEach((holder) => {
        const instance = window.echarts.getInstanceByDom(holder);
        if (instance) instance.resize();
      });
    } catch (error) {
      element.dataset.state = "error";
      element.querySelector(".state.error").textContent = t("error", { message: error.message });
      if (!(error instanceof ApiFailure)) console.error(error);
    } finally {
      element.removeAttribute("aria-busy");
      settled();
    }
  }

  function cell(tag, text, value, extra) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (value !== undefined) element.dataset.value = value === null ? "" : String(value);
    if (extra) extra(element);
    return element;
  }

  /* A table of `rows` by `columns` ({key, label, value(row), format(value, row), decorate(td, row,
   * value), text: left-aligned}),
   * with its CSV export wired to the section's button. */
  function table(element, columns, rows, name) {
    const holder = element.querySelector("[data-table]");
    holder.replaceChildren();
    const tableElement = document.createElement("table");
    const head = tableElement.createTHead().insertRow();
    for (const column of columns) {
      head.appendChild(cell("th", column.label, undefined, (th) => {
        th.scope = "col";
        if (column.text) th.className = "text";
      }));
    }
    const body = tableElement.createTBody();
    const values = rows.map((row) => columns.map((column) => (column.value ? column.value(row) : row[column.key])));
    rows.forEach((row, i) => {
      const tr = body.insertRow();
      columns.forEach((column, j) => {
        const value = values[i][j];
        const text = column.format ? column.format(value, row) : fmt.text(value);
        tr.appendChild(cell("td", text, value, (td) => {
          if (column.text) td.className = "text";
          if (column.decorate) column.decorate(td, row, value);
        }));
      });
    });
    holder.appendChild(tableElement);
    const button = element.querySelector("[data-csv]");
    if (button) {
      button.disabled = rows.length === 0;
      button.onclick = () =>
        download(csvName(name || element.dataset.section), csv(columns.map((c) => c.label), values));
    }
    return rows;
  }

  function csvField(value) {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function csv(header, values) {
    return [header, ...values].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
  }

  function csvName(name) {
    const period = config.period ? "-" + config.period.from + "-" + config.period.to : "";
    return "cohortline-" + config.page + "-" + name + period + ".csv";
  }

  function download(filename, text) {
    const url = URL.createObjectURL(new Blob(["\ufeff" + text], { type: "text/csv;charset=utf-8" }));
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = filename;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  const charts = [];
  const PALETTE = ["#2563eb", "#f97316", "#16a34a", "#a855f7", "#dc2626", "#0891b2", "#ca8a04", "#64748b"];

  function chart(element, option) {
    const holder = element.querySelector("[data-chart]");
    const instance = window.echarts.init(holder, null, { locale: config.lang === "zh" ? "ZH" : "EN", renderer: "canvas" });
    instance.setOption(Object.assign({ color: PALETTE, animation: false, tooltip: { trigger: "axis" } }, option));
    charts.push(instance);
    return instance;
  }

  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));

  /* Headline figures: [{key, label, value, text, note}] as tiles. */
  function figures(element, items) {
    const holder = element.querySelector("[data-body]");
    holder.replaceChildren();
    const list = document.createElement("dl");
    list.className = "figures";
    for (const item of items) {
      const tile = document.createElement("div");
      tile.className = "figure";
      tile.appendChild(cell("dt", item.label));
      tile.appendChild(cell("dd", item.text, item.value, (dd) => (dd.dataset.figure = item.key)));
      if (item.note) tile.appendChild(cell("dd", item.note, undefined, (dd) => (dd.className = "note")));
      list.appendChild(tile);
    }
    holder.appendChild(list);
    return items;
  }

  /* Text for HTML that ECharts shows as is (tooltip formatters). */
  function escape(text) {
    const span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  /* A note line (p.note-line[data-note], plus `className` if any) at the end of `element`, or with
   * `top` right under the section's heading. */
  function note(element, text, options) {
    const { className = "", top = false } = options || {};
    const paragraph = document.createElement("p");
    paragraph.className = "note-line" + (className ? " " + className : "");
    paragraph.dataset.note = "";
    paragraph.textContent = text;
    if (top) element.querySelector("header").after(paragraph);
    else element.appendChild(paragraph);
    return paragraph;
  }

  /* A table column's decorate: the cell links to this page with the query parameter `name` set to
   * the cell's value, marked aria-current when that value is `current` (the one shown). */
  function choiceLink(name, current) {
    return (td, row, value) => {
      const query = new URLSearchParams(params);
      query.set(name, value);
      const link = document.createElement("a");
      link.href = "?" + query.toString();
      link.textContent = value;
      if (value === current) link.setAttribute("aria-current", "true");
      td.replaceChildren(link);
    };
  }

  /* Error bars: a custom series (ECharts) drawing, at each category of a category axis, a line from
   * an interval's low to its high with a cap across each end. `intervals` holds one [low, high] (in
   * the value axis's unit) or null per category, so a bar's data index is its category's; its data
   * is [category, low, high]. Options: `horizontal` (the value axis is x), `color`, `width` (of the
   * lines, px), `cap` (half a cap's length as a share of the category's band) and `capMax` (px); any
   * other option is the series' own (name, xAxisIndex, yAxisIndex, z, tooltip...). */
  function errorBars(intervals, options) {
    const { horizontal = false, color = "#0f172a", width = 1.5, cap = 0.12, capMax = Infinity, ...series } = options || {};
    const at = (category, value) => (horizontal ? [value, category] : [category, value]);
    function renderItem(params, api) {
      if (isNaN(api.value(1)) || isNaN(api.value(2))) return null;
      const low = api.coord(at(api.value(0), api.value(1)));
      const high = api.coord(at(api.value(0), api.value(2)));
      const band = horizontal ? api.size([0, 1])[1] : api.size([1, 0])[0];
      const half = Math.min(capMax, band * cap);
      const style = { stroke: api.visual("color"), lineWidth: width };
      const across = ([x, y]) =>
        horizontal ? { x1: x, y1: y - half, x2: x, y2: y + half } : { x1: x - half, y1: y, x2: x + half, y2: y };
      return {
        type: "group",
        children: [
          { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style },
          { type: "line", shape: across(low), style },
          { type: "line", shape: across(high), style },
        ],
      };
    }
    return Object.assign(
      {
        type: "custom",
        renderItem,
        encode: horizontal ? { x: [1, 2], y: 0 } : { x: 0, y: [1, 2] },
        data: intervals.map((interval, i) => (interval ? [i, Number(interval[0]), Number(interval[1])] : [i, NaN, NaN])),
        itemStyle: { color },
      },
      series
    );
  }

  /* Controls: a changed choice applies at once; presets other than "custom" need no dates. */
  function wireControls() {
    const form = document.querySelector("form[data-controls]");
    if (!form) return;
    const preset = form.querySelector("[data-range]");
    const dates = form.querySelectorAll('input[type="date"]');
    if (preset) {
      preset.addEventListener("change", () => {
        const custom = preset.value === "custom";
        dates.forEach((input) => (input.disabled = !custom));
        if (!custom) form.requestSubmit();
        else dates[0].focus();
      });
    }
    form.querySelectorAll("select:not([data-range])").forEach((select) =>
      select.addEventListener("change", () => form.requestSubmit())
    );
    form.addEventListener("submit", () => {
      /* Leave defaults out of the URL so bookmarks stay short. */
      form.querySelectorAll("select, input").forEach((input) => {
        if (input.value === "" || input.dataset.default === input.value) input.disabled = true;
      });
    });
  }

  window.Cohortline = {
    config, params, t, fmt, api, ApiFailure, range, section, load, table, chart, figures, csv, started,
    escape, note, choiceLink, errorBars,
  };
  document.addEventListener("DOMContentLoaded", wireControls);
})();
