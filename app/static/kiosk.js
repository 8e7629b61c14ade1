// Kiosk page for the FashionSearchNet Edge service. Plain JS, no libraries, no network beyond this server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SWATCH = { black: "#1b1b1b", white: "#ffffff", grey: "#9a9a9a", gray: "#9a9a9a", red: "#d0312d",
    orange: "#f28c28", yellow: "#f4d03f", green: "#2e9e4f", blue: "#2856c9", purple: "#7d3c98", pink: "#f4a6c0",
    brown: "#7b4a2d", beige: "#e8d8b8", navy: "#1f2a5a" };
  const BOX_COLORS = ["#e63946", "#2a9d8f", "#f4a261", "#457b9d", "#9b5de5", "#f15bb5", "#00bbf9", "#8ac926"];
  const PAGE = 24;
  const state = { schema: null, query: null, info: null, sets: new Map(), region: null, offset: 0,
                  total: 0, mode: "catalogue", seq: 0, inflight: 0 };

  function pretty(s) { return String(s).replace(/_/g, " "); }

  function toast(msg) {
    const t = $("toast");
    t.textContent = msg; t.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  async function api(path, opts) {
    const r = await fetch(path, opts);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const err = new Error((body && body.error) || ("HTTP " + r.status));
      err.status = r.status; throw err;
    }
    return body;
  }

  async function waitReady() {
    for (;;) {
      try {
        const r = await fetch("/health");
        const b = await r.json();
        if (r.ok) { $("status").textContent = b.items + " items · ready"; return; }
        $("status").textContent = b.status === "failed" ? "Out of order: " + b.error : "Starting… (loading the model)";
        if (b.status === "failed") return Promise.reject(new Error(b.error));
      } catch (e) { $("status").textContent = "Waiting for the service…"; }
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  // ---- grid (catalogue or results) ----------------------------------------------------------------
  function card(item, opts) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "card"; b.dataset.testid = "card"; b.dataset.id = item.id;
    const p = item.predicted || {};
    for (const k in p) b.dataset["attr_" + k] = p[k].value;
    const img = document.createElement("img");
    img.loading = "lazy"; img.alt = item.item_id || item.id; img.src = item.image_url;
    const meta = document.createElement("div"); meta.className = "meta";
    const primary = ["color", "category"].filter((k) => p[k]).map((k) => pretty(p[k].value)).join(" ");
    const title = document.createElement("b"); title.textContent = primary || (item.item_id || item.id);
    meta.appendChild(title);
    const extra = Object.keys(p).filter((k) => k !== "color" && k !== "category").map((k) => pretty(p[k].value));
    if (extra.length) { meta.appendChild(document.createElement("br")); meta.appendChild(document.createTextNode(extra.join(" · "))); }
    if (item.metadata && item.metadata.price) { meta.appendChild(document.createElement("br")); meta.appendChild(document.createTextNode("€ " + item.metadata.price)); }
    b.appendChild(img); b.appendChild(meta);
    b.addEventListener("click", () => chooseItem(item));
    return b;
  }

  function renderGrid(items, mode) {
    const grid = $("grid");
    grid.replaceChildren();
    for (const it of items) grid.appendChild(card(it, {}));
    state.mode = mode; state.seq += 1;
    grid.dataset.mode = mode; grid.dataset.seq = String(state.seq);
    grid.dataset.sets = [...state.sets.entries()].map(([k, v]) => k + "=" + v).join(",");
    $("pager").hidden = mode !== "catalogue";
  }

  async function loadCatalogue(offset) {
    const b = await api("/items?offset=" + offset + "&limit=" + PAGE);
    state.offset = offset; state.total = b.total;
    $("results-title").textContent = "Catalogue";
    $("changes").replaceChildren();
    renderGrid(b.items, "catalogue");
    const pages = Math.max(1, Math.ceil(b.total / PAGE));
    $("page-info").textContent = "page " + (Math.floor(offset / PAGE) + 1) + " of " + pages;
    $("prev").disabled = offset <= 0; $("next").disabled = offset + PAGE >= b.total;
  }

  // ---- query ----------------------------------------------------------------------------------------
  function chooseItem(item) {
    state.query = { item_id: item.id, url: item.image_url };
    state.sets.clear();
    search();
  }

  // "Describe it": no photo; the picked values alone are the query (POST /search with only sets)
  function chooseDescribe() {
    if (state.query && state.query.objectUrl) URL.revokeObjectURL(state.query.objectUrl);
    state.query = { describe: true };
    state.sets.clear(); state.info = null;
    showQuery();
    renderControls();
    describePrompt();
  }

  function describePrompt() {
    $("results-title").textContent = "Pick what you are looking for";
    $("changes").replaceChildren();
    renderGrid([], "describe");
    const hint = document.createElement("div"); hint.className = "empty"; hint.dataset.testid = "describe-hint";
    hint.textContent = "Tap a colour, a category or any other value on the left: the items that show them appear here.";
    $("grid").appendChild(hint);
  }

  function choosePhoto(file) {
    if (!file) return;
    if (state.query && state.query.objectUrl) URL.revokeObjectURL(state.query.objectUrl);
    const url = URL.createObjectURL(file);
    state.query = { file: file, url: url, objectUrl: url };
    state.sets.clear();
    search();
  }

  async function search() {
    if (!state.query) return;
    const describing = !!state.query.describe;
    if (describing && !state.sets.size) { ++state.inflight; renderControls(); describePrompt(); return; }
    const seq = ++state.inflight;
    document.body.classList.add("busy");
    const sets = [...state.sets.entries()].map(([k, v]) => k + "=" + v);
    let opts;
    if (describing) {
      opts = { method: "POST", headers: { "content-type": "application/json" },
               body: JSON.stringify({ sets: sets, k: 12 }) };
    } else if (state.query.file) {
      const fd = new FormData();
      fd.append("image", state.query.file);
      sets.forEach((s) => fd.append("sets", s));
      fd.append("k", "12");
      opts = { method: "POST", body: fd };
    } else {
      opts = { method: "POST", headers: { "content-type": "application/json" },
               body: JSON.stringify({ item_id: state.query.item_id, sets: sets, k: 12 }) };
    }
    try {
      const b = await api("/search", opts);
      if (seq !== state.inflight) return; // a newer search superseded this one
      state.info = b.query;
      showQuery();
      renderControls();
      $("results-title").textContent = describing ? "Matching your description" :
        (sets.length ? "Like yours, with your changes" : "Like yours");
      const ch = $("changes"); ch.replaceChildren();
      sets.forEach((s) => { const t = document.createElement("span"); t.className = "tag"; t.textContent = pretty(s).replace(":", " "); ch.appendChild(t); });
      renderGrid(b.results, "results");
    } catch (e) {
      toast(e.message);
    } finally {
      if (seq === state.inflight) document.body.classList.remove("busy");
    }
  }

  function showQuery() {
    const describing = !!state.query.describe;
    $("query-empty").hidden = true; $("controls").hidden = false;
    $("query-figure").hidden = describing;
    $("describe").classList.toggle("active", describing);
    $("controls-title").textContent = describing ? "Describe what you want" : "Change what you want";
    $("controls-hint").textContent = describing ? "Tap the values you are looking for; tap again to drop one." :
      "Tap a value to change it; tap the detected one (●) to keep it.";
    $("region-title").textContent = describing ? "Describe one part" : "Change one part";
    $("reset").textContent = describing ? "↺ Start again" : "↺ Undo all changes";
    if (describing) return;
    const img = $("query-img");
    if (img.getAttribute("src") !== state.query.url) { img.onload = drawBoxes; img.src = state.query.url; }
    else drawBoxes();
  }

  function drawBoxes() {
    const img = $("query-img"), cv = $("query-boxes"), info = state.info;
    const w = img.clientWidth, h = img.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
    cv.style.width = w + "px"; cv.style.height = h + "px";
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!info || !$("show-boxes").checked || !img.naturalWidth) return;
    // object-fit: contain -> the drawn picture's rectangle inside the element
    const s = Math.min(w / info.width, h / info.height);
    const ox = (w - info.width * s) / 2, oy = (h - info.height * s) / 2;
    ctx.font = "600 13px system-ui, sans-serif"; ctx.lineWidth = 3;
    const want = new Set([...state.sets.keys()].map((k) => k.split(":")[0]));
    info.boxes.forEach((b, i) => {
      if (b.kind === "attribute" && want.size && !want.has(b.name)) return;
      const [x0, y0, x1, y1] = b.box;
      const col = BOX_COLORS[i % BOX_COLORS.length];
      ctx.strokeStyle = col; ctx.setLineDash(b.kind === "region" ? [8, 5] : []);
      ctx.strokeRect(ox + x0 * s + 1.5, oy + y0 * s + 1.5, Math.max(0, (x1 - x0) * s - 3), Math.max(0, (y1 - y0) * s - 3));
      const label = pretty(b.name) + (b.kind === "region" ? " (part)" : "");
      const tw = ctx.measureText(label).width + 10;
      ctx.setLineDash([]); ctx.fillStyle = col;
      const ly = Math.max(0, oy + y0 * s);
      ctx.fillRect(ox + x0 * s, ly, tw, 19);
      ctx.fillStyle = "#fff"; ctx.fillText(label, ox + x0 * s + 5, ly + 14);
    });
  }

  // ---- controls -------------------------------------------------------------------------------------
  function chip(attr, value, detected, key) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "chip"; b.dataset.testid = "chip";
    b.dataset.key = key; b.dataset.value = value;
    if (value === detected) b.classList.add("detected");
    if (state.sets.get(key) === value) b.classList.add("chosen");
    if (attr === "color" && SWATCH[value]) {
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = SWATCH[value];
      b.appendChild(sw);
    }
    b.appendChild(document.createTextNode(pretty(value)));
    b.setAttribute("aria-pressed", state.sets.get(key) === value ? "true" : "false");
    b.addEventListener("click", () => {
      if (state.sets.get(key) === value || (value === detected && !key.includes(":"))) state.sets.delete(key);
      else state.sets.set(key, value);
      search();
    });
    return b;
  }

  function renderControls() {
    const box = $("attr-controls"); box.replaceChildren();
    const pred = (state.info && state.info.predicted) || {};
    for (const a of state.schema.attributes) {
      const row = document.createElement("div"); row.className = "attr-row"; row.dataset.attr = a.name;
      const name = document.createElement("div"); name.className = "attr-name";
      name.textContent = pretty(a.name);
      if (pred[a.name]) {
        const c = document.createElement("span"); c.className = "conf";
        c.textContent = "looks " + pretty(pred[a.name].value) + " (" + Math.round(100 * pred[a.name].confidence) + "%)";
        name.appendChild(c);
      }
      const chips = document.createElement("div"); chips.className = "chips";
      a.values.forEach((v) => chips.appendChild(chip(a.name, v, pred[a.name] && pred[a.name].value, a.name)));
      row.appendChild(name); row.appendChild(chips); box.appendChild(row);
    }
    const tabs = $("region-tabs"); tabs.replaceChildren();
    const regions = state.schema.regions || [];
    if (!regions.length) { tabs.parentElement && (tabs.textContent = "This model has no regions."); return; }
    if (!state.region) state.region = regions[0].name;
    regions.forEach((r) => {
      const t = document.createElement("button"); t.type = "button"; t.className = "tab"; t.role = "tab";
      t.dataset.testid = "region-tab"; t.dataset.region = r.name; t.textContent = pretty(r.name);
      t.setAttribute("aria-selected", r.name === state.region ? "true" : "false");
      t.addEventListener("click", () => { state.region = r.name; renderControls(); });
      tabs.appendChild(t);
    });
    const rc = $("region-controls"); rc.replaceChildren();
    const reg = regions.find((r) => r.name === state.region);
    for (const attr of reg.attributes) {
      const row = document.createElement("div"); row.className = "attr-row"; row.dataset.attr = reg.name + ":" + attr;
      const name = document.createElement("div"); name.className = "attr-name"; name.textContent = pretty(reg.name) + " " + pretty(attr);
      const chips = document.createElement("div"); chips.className = "chips";
      reg.values[attr].forEach((v) => chips.appendChild(chip(attr, v, null, reg.name + ":" + attr)));
      row.appendChild(name); row.appendChild(chips); rc.appendChild(row);
    }
  }

  // ---- wiring ---------------------------------------------------------------------------------------
  async function start() {
    $("photo").addEventListener("change", (e) => choosePhoto(e.target.files[0]));
    $("browse").addEventListener("click", () => loadCatalogue(state.mode === "catalogue" ? state.offset : 0).catch((e) => toast(e.message)));
    $("prev").addEventListener("click", () => loadCatalogue(Math.max(0, state.offset - PAGE)).catch((e) => toast(e.message)));
    $("next").addEventListener("click", () => loadCatalogue(state.offset + PAGE).catch((e) => toast(e.message)));
    $("reset").addEventListener("click", () => { state.sets.clear(); search(); });
    $("describe").addEventListener("click", chooseDescribe);
    $("show-boxes").addEventListener("change", drawBoxes);
    window.addEventListener("resize", drawBoxes);
    try {
      await waitReady();
      state.schema = await api("/attributes");
      await loadCatalogue(0);
      document.body.dataset.ready = "1";
    } catch (e) { toast(e.message); }
  }
  start();
})();
