// gridlink dashboard: sites, their assets' live values and health, and the
// latest integration test run, read through the platform's public API with
// the visitor's key. Plain DOM; every value from the API goes in through
// textContent, never as markup.
"use strict";

(function () {
  const KEY = "gridlink.key";
  const DEFAULT_INTERVAL_S = 10; // until an asset's cadence has been seen
  const ITC_POLL_MS = 5000;
  const RETRY_MS = 5000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  };

  let key = "";
  let running = null; // the state of the shown dashboard, or null

  // The key: ?key= (the demo's link) wins, then the tab's session storage.
  // It is taken out of the address at once, so it stays out of history.
  function initialKey() {
    const url = new URL(window.location.href);
    const k = url.searchParams.get("key");
    if (k) {
      sessionStorage.setItem(KEY, k);
      url.searchParams.delete("key");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
      return k;
    }
    return sessionStorage.getItem(KEY) || "";
  }

  function setStatus(msg) { $("status").textContent = msg; }

  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(path) {
    const res = await fetch(path, { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const msg = body && body.error ? body.error : res.status + " " + res.statusText;
      if (res.status === 401) askKey("The platform refused the key: " + msg);
      throw new HTTPError(res.status, msg);
    }
    return body;
  }

  function askKey(error) {
    stop();
    sessionStorage.removeItem(KEY);
    key = "";
    $("sites").hidden = true;
    $("itc").hidden = true;
    $("forget").hidden = true;
    $("key-form").hidden = false;
    $("key-error").textContent = error || "";
    setStatus(error ? "" : "Give an API key to see the sites.");
    $("key-input").focus();
  }

  function stop() {
    if (!running) return;
    running.stopped = true;
    for (const s of running.sites.values()) {
      if (s.source) s.source.close();
      clearTimeout(s.retry);
    }
    clearInterval(running.tick);
    clearInterval(running.itcPoll);
    running = null;
  }

  async function start() {
    stop();
    $("key-form").hidden = true;
    $("forget").hidden = false;
    const state = { sites: new Map(), stopped: false };
    running = state;
    setStatus("Loading sites…");
    let sites;
    try {
      sites = (await api("api/v1/sites")).sites;
    } catch (e) {
      if (e.status !== 401) setStatus("Could not list the sites: " + e.message);
      return;
    }
    if (state.stopped) return;
    const list = $("site-list");
    list.replaceChildren();
    $("sites").hidden = false;
    $("itc").hidden = false;
    if (sites.length === 0) list.append(el("p", { class: "muted", text: "This key reads no site." }));
    for (const site of sites) {
      const s = newSite(site);
      state.sites.set(site.id, s);
      list.append(s.section);
    }
    setStatus(sites.length + (sites.length === 1 ? " site" : " sites") + ".");
    await Promise.all([...state.sites.values()].map((s) => loadSite(state, s)));
    state.tick = setInterval(() => { for (const s of state.sites.values()) renderHealth(s); }, 1000);
    loadITC(state);
    state.itcPoll = setInterval(() => loadITC(state), ITC_POLL_MS);
  }

  function newSite(site) {
    const title = site.name ? site.name + " (" + site.id + ")" : site.id;
    const tbody = el("tbody");
    const table = el("table", {},
      el("caption", { text: "Assets of " + title }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Asset" }), el("th", { scope: "col", text: "Type" }),
        el("th", { scope: "col", text: "Latest values" }), el("th", { scope: "col", text: "Last value" }),
        el("th", { scope: "col", text: "Health" }))),
      tbody);
    const headingID = "site-" + site.id;
    const live = el("p", { class: "muted live", text: "Live feed: connecting…" });
    const section = el("section", { class: "site", "data-site": site.id, "data-live": "connecting", "aria-labelledby": headingID },
      el("h3", { id: headingID, text: title }), live, table);
    return { id: site.id, section, tbody, live, assets: new Map(), source: null, retry: 0 };
  }

  function asset(s, id, type) {
    let a = s.assets.get(id);
    if (!a) {
      a = { id, type: type || "", series: new Map(), times: [], last: null, row: null };
      s.assets.set(id, a);
      a.row = el("tr", { "data-asset": id });
      a.cells = {
        id: el("th", { scope: "row", text: id }), type: el("td", { text: a.type }),
        values: el("td", { class: "values" }), last: el("td", { class: "last" }),
        health: el("td", { class: "health-cell" }),
      };
      a.row.append(a.cells.id, a.cells.type, a.cells.values, a.cells.last, a.cells.health);
      // Keep rows ordered by asset id.
      const after = [...s.tbody.children].find((r) => r.dataset.asset > id);
      s.tbody.insertBefore(a.row, after || null);
    } else if (type && !a.type) {
      a.type = type;
      a.cells.type.textContent = type;
    }
    return a;
  }

  async function loadSite(state, s) {
    try {
      const [assets, latest] = await Promise.all([
        api("api/v1/sites/" + encodeURIComponent(s.id) + "/assets"),
        api("api/v1/latest?site=" + encodeURIComponent(s.id)),
      ]);
      if (state.stopped) return;
      for (const a of assets.assets) asset(s, a.id, a.type);
      for (const r of latest.readings) apply(s, r);
      for (const a of s.assets.values()) render(s, a);
      if (s.assets.size === 0 && !s.tbody.querySelector(".empty")) {
        s.tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "5", class: "muted", text: "No assets yet." })));
      }
    } catch (e) {
      if (e.status !== 401) s.live.textContent = "Could not load the site: " + e.message;
      return;
    }
    connect(state, s);
  }

  // connect follows the site's live feed. EventSource sends no headers,
  // so the key goes in the parameter key, which only the stream takes.
  function connect(state, s) {
    if (state.stopped) return;
    const src = new EventSource("api/v1/stream?site=" + encodeURIComponent(s.id) + "&key=" + encodeURIComponent(key));
    s.source = src;
    src.onopen = () => {
      s.section.dataset.live = "open";
      s.live.textContent = "Live feed: connected.";
    };
    src.addEventListener("reading", (ev) => {
      let r;
      try { r = JSON.parse(ev.data); } catch (e) { return; }
      const a = apply(s, r);
      if (a) render(s, a);
    });
    src.addEventListener("dropped", () => refreshLatest(state, s));
    src.onerror = () => {
      s.section.dataset.live = "closed";
      if (src.readyState === EventSource.CLOSED) {
        // Refused or gone for good: try again later, and catch up then.
        s.live.textContent = "Live feed: lost; retrying…";
        src.close();
        s.retry = setTimeout(() => { refreshLatest(state, s); connect(state, s); }, RETRY_MS);
      } else {
        s.live.textContent = "Live feed: reconnecting…";
      }
    };
  }

  async function refreshLatest(state, s) {
    try {
      const latest = await api("api/v1/latest?site=" + encodeURIComponent(s.id));
      if (state.stopped) return;
      for (const r of latest.readings) { const a = apply(s, r); if (a) render(s, a); }
    } catch (e) { /* the next event or retry catches up */ }
  }

  // apply records a reading (of GET /api/v1/latest or the live feed) and
  // returns its asset.
  function apply(s, r) {
    if (!r || typeof r.asset !== "string" || typeof r.quantity !== "string") return null;
    const a = asset(s, r.asset);
    const k = r.quantity + "/" + (r.phase || "total");
    const old = a.series.get(k);
    if (old && old.time > r.time) return a; // an older value arrived late
    a.series.set(k, { quantity: r.quantity, phase: r.phase || "total", unit: r.unit || "", time: r.time, value: r.value });
    if (!a.times.includes(r.time)) {
      a.times.push(r.time);
      a.times.sort((x, y) => x - y);
      if (a.times.length > 12) a.times.shift();
    }
    if (a.last === null || r.time > a.last) a.last = r.time;
    const empty = s.tbody.querySelector(".empty");
    if (empty) empty.remove();
    return a;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    return String(Math.round(v * 1000) / 1000);
  }

  function render(s, a) {
    const spans = [...a.series.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([k, p]) => {
      const label = p.quantity + (p.phase !== "total" ? " " + p.phase : "");
      return el("span", { "data-series": k, "data-value": fmt(p.value) },
        label + " = " + fmt(p.value) + (p.unit ? " " + p.unit : ""));
    });
    a.cells.values.replaceChildren(...spans);
    if (spans.length === 0) a.cells.values.append(el("span", { class: "muted", text: "no value yet" }));
    if (a.last !== null) {
      const t = new Date(a.last);
      a.cells.last.replaceChildren(el("time", { datetime: t.toISOString(), text: t.toLocaleString() }));
    }
    renderHealth(s, a);
  }

  // interval is an asset's typical time between readings: the median gap
  // between the distinct reading times seen.
  function interval(a) {
    const gaps = [];
    for (let i = 1; i < a.times.length; i++) gaps.push(a.times[i] - a.times[i - 1]);
    if (gaps.length === 0) return DEFAULT_INTERVAL_S;
    gaps.sort((x, y) => x - y);
    return Math.max(gaps[Math.floor(gaps.length / 2)] / 1000, 1);
  }

  function health(a, now) {
    if (a.last === null) return { state: "silent", text: "silent · no value yet" };
    const age = Math.max(0, (now - a.last) / 1000);
    const iv = interval(a);
    const state = age < 3 * iv ? "ok" : age < 10 * iv ? "stale" : "silent";
    return { state, text: state + " · " + Math.round(age) + " s ago" };
  }

  function renderHealth(s, only) {
    const now = Date.now();
    for (const a of only ? [only] : s.assets.values()) {
      const h = health(a, now);
      const c = a.cells.health;
      if (c.dataset.health !== h.state || c.textContent !== h.text) {
        c.dataset.health = h.state;
        c.replaceChildren(el("span", { class: "health " + h.state, text: h.text }));
      }
    }
  }

  async function loadITC(state) {
    const summary = $("itc-summary");
    const table = $("itc-results");
    try {
      const runs = (await api("api/v1/itc/runs?limit=1")).runs;
      if (state.stopped) return;
      if (runs.length === 0) {
        summary.textContent = "No integration test run yet.";
        table.hidden = true;
        table.dataset.run = "";
        return;
      }
      const run = await api("api/v1/itc/runs/" + encodeURIComponent(runs[0].id));
      if (state.stopped) return;
      const c = runs[0].counts || {};
      summary.textContent = "Run " + run.id + (run.platform ? " against " + run.platform : "") +
        ", started " + new Date(run.start).toLocaleString() + ": " +
        ["passed", "failed", "suspended", "not_run"].map((k) => (c[k] || 0) + " " + k.replace("_", " ")).join(", ") + ".";
      const rows = (run.results || []).map((r) => el("tr", { "data-case": r.case, "data-site": r.site || "" },
        el("th", { scope: "row", text: r.case }), el("td", { text: r.name || "" }), el("td", { text: r.site || "" }),
        el("td", {}, el("span", { class: "status " + r.status, text: r.status.replace("_", " ") })),
        el("td", { class: "reason", text: r.reason || "" })));
      table.tBodies[0].replaceChildren(...rows);
      table.hidden = false;
      table.dataset.run = run.id;
    } catch (e) {
      if (e.status === 401) return;
      summary.textContent = e.status === 403 ? "This key cannot read the integration test runs."
        : e.status === 404 ? "This platform keeps no integration test runs."
          : "Could not load the integration test runs: " + e.message;
      table.hidden = true;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const k = $("key-input").value.trim();
      if (!k) return;
      key = k;
      sessionStorage.setItem(KEY, k);
      $("key-input").value = "";
      $("key-error").textContent = "";
      start();
    });
    $("forget").addEventListener("click", () => askKey(""));
    $("itc-refresh").addEventListener("click", () => { if (running) loadITC(running); });
    key = initialKey();
    if (key) start(); else askKey("");
  });
})();
