// coop explore: the page. Its state is the URL's query (explore/state.py checks it); the server
// computes, this script draws. Requests are numbered per kind: a newer one aborts the older
// (and the server drops an older one still waiting), and an answer older than the newest asked
// for is ignored, so the page shows the last view asked for, never a stale one.
"use strict";

const DEFAULTS = {alpha: "0.1", mu1: "0.1", mu2: "0", lr: "1", steps: "16000", dims: "20,20,20,160", seed: "7",
                  method: "gd", clamp: "", aggregate: "mean", alpha_max: "0.5", mu1_max: "0.5"};
const DIAGRAM_KEYS = ["mu2", "lr", "steps", "dims", "seed", "clamp", "aggregate", "alpha_max", "mu1_max"];
const PORTRAIT_KEYS = ["alpha", "mu1", "mu2", "lr", "steps", "dims", "seed", "clamp"];
// log sliders: position 0 is 0 (the offsets and alpha may be 0), positions 1..1000 span 10^lo..10^hi
const LOG = {alpha: [-4, 1, true], mu1: [-4, 1, true], mu2: [-5, 1, true], steps: [2, Math.log10(200000), false]};
// what a server message's option (a query name, the command's field) names on the page
const OPTION_CONTROLS = {alpha: ["alpha"], mu1: ["mu1"], mu2: ["mu2"], lr: ["lr"], steps: ["steps"],
  seed: ["seed"], method: ["method"], aggregate: ["aggregate"], dims: ["n_a", "n_b", "n_c", "n_d"],
  clamp: ["clamp_b", "clamp_b_k", "clamp_c", "clamp_c_k"], alpha_max: ["alpha_max"], mu1_max: ["mu1_max"],
  "fit.json": ["fit-file"]};
const CONTROL_NAMES = {alpha: "α", mu1: "μ1", mu2: "μ2", alpha_max: "α up to", mu1_max: "μ1 up to"};
const COLORS = {l1: "#1f6fb4", l2: "#d9541e", competition: "#6a6a6a", loss: "#111111"};
const VEC_COLORS = ["#1f6fb4", "#2a9d8f", "#8e6bb0", "#d9541e"];
const $ = (id) => document.getElementById(id);
const client = Math.random().toString(36).slice(2);

const explore = window.explore = {
  state: {}, good: null, tab: "losses", charts: {}, traj: null, diagram: null, fit: null, errors: 0,
  seq: {trajectory: 0, diagram: 0, portrait: 0}, pending: {trajectory: null, diagram: null, portrait: null}, ready: false,
  portrait: null,
};

// ---- state <-> URL <-> controls ------------------------------------------------------------------

function readUrl() {
  const q = new URLSearchParams(location.search);
  for (const k of Object.keys(DEFAULTS)) explore.state[k] = q.has(k) ? q.get(k) : DEFAULTS[k];
  if (q.has("tab")) explore.tab = q.get("tab");
}

function query(state, extra = {}) {
  const q = new URLSearchParams();
  for (const k of Object.keys(DEFAULTS)) q.set(k, state[k]);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q.toString();
}

function sliderValue(name, pos) {
  const [lo, hi, zero] = LOG[name];
  if (zero && pos === 0) return "0";
  const t = zero ? (pos - 1) / 999 : pos / 1000;
  const v = Math.pow(10, lo + (hi - lo) * t);
  return name === "steps" ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
}

function sliderPos(name, text) {
  const [lo, hi, zero] = LOG[name];
  const v = Number(text);
  if (!isFinite(v)) return 0;
  if (zero && v <= 0) return 0;
  const t = (Math.log10(Math.max(v, Math.pow(10, lo))) - lo) / (hi - lo);
  return zero ? 1 + Math.round(Math.min(1, t) * 999) : Math.round(Math.min(1, Math.max(0, t)) * 1000);
}

function showState() {
  const s = explore.state;
  for (const k of ["alpha", "mu1", "mu2", "lr", "steps", "seed", "method", "aggregate", "alpha_max", "mu1_max"]) $(k).value = s[k];
  for (const k of Object.keys(LOG)) $(k + "-slider").value = sliderPos(k, s[k]);
  const dims = s.dims.split(",");
  ["n_a", "n_b", "n_c", "n_d"].forEach((id, i) => { $(id).value = dims[i] ?? ""; });
  const items = Object.fromEntries(s.clamp.split(",").filter((x) => x.trim()).map((x) => {
    const [name, k] = x.trim().split(":");
    return [name, k ?? "all"];
  }));
  for (const v of ["b", "c"]) {
    const k = items[v];
    $("clamp_" + v).value = k === undefined ? "" : (k === "all" ? "all" : "k");
    $("clamp_" + v + "_k").value = k && k !== "all" ? k : "";
    $("clamp_" + v + "_k").disabled = $("clamp_" + v).value !== "k";
  }
}

function clampSpec() {
  const parts = [];
  for (const v of ["b", "c"]) {
    const mode = $("clamp_" + v).value;
    $("clamp_" + v + "_k").disabled = mode !== "k";
    if (mode === "all") parts.push(v);
    if (mode === "k") parts.push(v + ":" + $("clamp_" + v + "_k").value.trim());
  }
  // the clamped vectors other than b and c (from a URL) are kept as they are
  const others = explore.state.clamp.split(",").map((x) => x.trim()).filter((x) => x && !/^[bc](:|$)/.test(x));
  return others.concat(parts).join(",");
}

function set(changes) {
  const before = explore.state;
  explore.state = {...before, ...changes};
  const diagramChanged = DIAGRAM_KEYS.some((k) => explore.state[k] !== before[k]);
  request("trajectory");
  if (diagramChanged) request("diagram");
  else drawDiagram();
  portraitIfShown();
}

// the portrait is computed only while its tab is shown, and again only when its inputs change
function portraitIfShown() {
  const p = explore.portrait;
  if (explore.tab === "portrait" && !(p && PORTRAIT_KEYS.every((k) => p.state[k] === explore.state[k]))) request("portrait");
}

function bindControls() {
  for (const k of ["alpha", "mu1", "mu2", "lr", "steps", "seed", "alpha_max", "mu1_max"]) {
    $(k).addEventListener("change", () => {
      if (LOG[k]) $(k + "-slider").value = sliderPos(k, $(k).value);
      set({[k]: $(k).value.trim()});
    });
  }
  for (const k of Object.keys(LOG)) {
    $(k + "-slider").addEventListener("input", () => {
      const v = sliderValue(k, Number($(k + "-slider").value));
      $(k).value = v;
      set({[k]: v});
    });
  }
  for (const k of ["method", "aggregate"]) $(k).addEventListener("change", () => set({[k]: $(k).value}));
  for (const id of ["n_a", "n_b", "n_c", "n_d"]) {
    $(id).addEventListener("change", () => set({dims: ["n_a", "n_b", "n_c", "n_d"].map((i) => $(i).value.trim()).join(",")}));
  }
  for (const id of ["clamp_b", "clamp_b_k", "clamp_c", "clamp_c_k"]) $(id).addEventListener("change", () => set({clamp: clampSpec()}));
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("diagram-canvas").addEventListener("click", clickDiagram);
  $("fit-file").addEventListener("change", openFit);
  $("fit-apply").addEventListener("click", applyFit);
  $("fit-reference").addEventListener("click", openReference);
  window.addEventListener("resize", () => { for (const c of Object.values(explore.charts)) c.setSize(chartSize()); });
}

function showTab(tab) {
  explore.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const t of ["losses", "vectors", "portrait", "transformer"]) $("tab-" + t).hidden = t !== tab;
  portraitIfShown();
  if (explore.good) history.replaceState(null, "", "?" + query(explore.good, {tab}));
}

// ---- requests ------------------------------------------------------------------------------------

function setMessage(text, option) {
  for (const el of document.querySelectorAll(".bad")) el.classList.remove("bad");
  $("message").hidden = !text;
  $("message").textContent = text || "";
  for (const id of OPTION_CONTROLS[option] || []) $(id).classList.add("bad");
}

function status() {
  const parts = [];
  if (Object.values(explore.pending).some((p) => p)) parts.push("computing…");
  if (explore.traj) parts.push(`trajectory ${(1000 * explore.traj.seconds).toFixed(0)} ms`);
  if (explore.portrait && explore.tab === "portrait") parts.push(`portrait ${explore.portrait.seconds.toFixed(2)} s`);
  if (explore.diagram) parts.push(explore.diagram.seconds ? `diagram ${explore.diagram.seconds.toFixed(2)} s` : "diagram (kept)");
  $("status").textContent = parts.join(" · ");
}

// a column as the server packs it (little-endian float64, base64), nan and inf as gaps
function unpack(text) {
  const bytes = Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
  return Array.from(new Float64Array(bytes.buffer), (v) => (isFinite(v) ? v : null));
}

function unpackAll(packed) {
  return Object.fromEntries(Object.entries(packed).map(([k, v]) => [k, unpack(v)]));
}

async function request(kind) {
  const seq = ++explore.seq[kind];
  if (explore.pending[kind]) explore.pending[kind].abort();
  const controller = explore.pending[kind] = new AbortController();
  const state = {...explore.state};
  const extra = {client, seq};
  if (kind === "trajectory" && explore.fit) extra.fit = explore.fit.id;
  status();
  let answer, body;
  try {
    answer = await fetch(`/api/${kind}?${query(state, extra)}`, {signal: controller.signal});
    body = await answer.json();
  } catch (err) {
    if (err.name === "AbortError") return;
    throw err;
  } finally {
    if (explore.pending[kind] === controller) explore.pending[kind] = null;
  }
  if (seq !== explore.seq[kind] || body.stale) { status(); return; }
  if (!answer.ok) {
    explore.errors += 1;
    const name = CONTROL_NAMES[body.option] || body.option;
    setMessage(`${name}: ${body.error.slice(body.option.length + 2)} (the last good view is kept)`, body.option);
    status();
    return;
  }
  setMessage("");
  if (kind === "trajectory") {
    explore.good = state;
    explore.traj = {...body, columns: unpackAll(body.columns), mapped: body.mapped && unpackAll(body.mapped)};
    history.replaceState(null, "", "?" + query(state, {tab: explore.tab}));
    drawTrajectory();
  } else if (kind === "diagram") {
    explore.diagram = {...body, state};
  } else {
    explore.portrait = {...body, state};
    $("portrait-note").textContent = `Gradient flow for ${Number(state.steps) * Number(state.lr)} time units ` +
      `(steps x lr) from ${state.seed === "7" ? "the paper's draw" : "draw " + state.seed}; mean aggregate, as ` +
      `coop toy portrait draws it (${body.seconds.toFixed(2)} s).`;
  }
  drawDiagram();
  drawPortrait(explore);
  status();
  explore.ready = Boolean(explore.traj && explore.diagram);
}

// ---- the curves ----------------------------------------------------------------------------------

function chartSize() {
  return {width: Math.max(480, $("views").clientWidth - 4), height: 230};
}

// the log axis's floor, as toymodel.plots draws trajectories: 1% of the smallest L1 (at least 1e-10);
// smaller values (L2 once CIWL is learned falls to 1e-200 and below) are drawn at the floor
function logFloor(t) {
  const l1 = t.columns.l1.filter((v) => v !== null);
  return Math.max(1e-10, 0.01 * Math.min(t.l1_min ?? Infinity, ...l1));
}

function floored(values, floor) { return values.map((v) => (v === null ? null : Math.max(v, floor))); }

function peakMarker(u) {
  const t = explore.traj;
  if (!t || t.l1_min === null) return;
  const x = u.valToPos(t.l1_min_step, "x", true), y = u.valToPos(t.l1_min, "y", true);
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = COLORS.l1;
  ctx.setLineDash([3, 3]);
  ctx.beginPath();
  ctx.moveTo(x, u.bbox.top);
  ctx.lineTo(x, u.bbox.top + u.bbox.height);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = COLORS.l1;
  ctx.beginPath();
  ctx.arc(x, y, 5 * devicePixelRatio, 0, 2 * Math.PI);
  ctx.fill();
  ctx.restore();
}

function tick(v) {
  if (v === null) return "";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(0) : String(Number(v.toPrecision(4)));
}

function lineChart(id, title, series, yScale, data, extraHooks = {}) {
  const opts = {
    title, ...chartSize(), scales: {x: {time: false}, y: yScale},
    series: [{label: "step"}, ...series.map((s) => ({points: {show: false}, width: 1.6, ...s}))],
    axes: [{label: "training step (toy)"}, {size: 62, values: (u, splits) => splits.map(tick)}],
    legend: {live: false}, hooks: extraHooks,
  };
  return new uPlot(opts, data, $(id));
}

// the charts, made with their first data (uPlot's log scale needs data to place its ticks)
const CHARTS = {
  losses: (data) => lineChart("chart-losses", "loss terms (log scale): the ICL peak marked", [
    {label: "L1 (ICL)", stroke: COLORS.l1}, {label: "L2 (CIWL)", stroke: COLORS.l2},
    {label: "C (competition)", stroke: COLORS.competition}, {label: "L (total)", stroke: COLORS.loss, width: 1}],
  {distr: 3}, data, {draw: [peakMarker]}),
  strengths: (data) => lineChart("chart-strengths", "mechanism strength (1 = learned)", [
    {label: "ICL a⊗b⊗c", stroke: COLORS.l1}, {label: "CIWL d⊗b⊗c", stroke: COLORS.l2}], {}, data),
  norms: (data) => lineChart("chart-norms", "norm |v|", ["a", "b", "c", "d"].map((v, i) => (
    {label: `|${v}|`, stroke: VEC_COLORS[i]})), {}, data),
  cosines: (data) => lineChart("chart-cosines", "cosine to the target", ["a", "b", "c", "d"].map((v, i) => (
    {label: `cos(${v}, ${v}*)`, stroke: VEC_COLORS[i]})), {range: [-1, 1]}, data),
  ...Object.fromEntries([["icl", "ICL"], ["ciwl", "CIWL"]].map(([key, label]) => [key, (data) => lineChart(
    `chart-${key}`, `${label} evaluator: measured, fitted, the toy now`, [
      {label: "transformer (measured)", stroke: "#000", paths: () => null, points: {show: true, size: 4, fill: "#000"}},
      {label: "the fit's toy", stroke: "#999", dash: [6, 4]},
      {label: "the toy at the controls, mapped", stroke: key === "icl" ? COLORS.l1 : COLORS.l2}], {}, data)])),
};

function plot(key, data) {
  if (explore.charts[key]) explore.charts[key].setData(data);
  else explore.charts[key] = CHARTS[key](data);
}

function drawTrajectory() {
  const t = explore.traj, c = t.columns;
  const floor = logFloor(t);
  plot("losses", [c.step, ...["l1", "l2", "competition", "loss"].map((k) => floored(c[k], floor))]);
  plot("strengths", [c.step, c.icl_strength, c.ciwl_strength]);
  plot("norms", [c.step, c.norm_a, c.norm_b, c.norm_c, c.norm_d]);
  plot("cosines", [c.step, c.cos_a, c.cos_b, c.cos_c, c.cos_d]);
  const peak = t.l1_min === null ? "no finite L1" :
    `ICL peak: L1 = ${t.l1_min.toPrecision(4)} at step ${t.l1_min_step.toLocaleString("en")}`;
  const diverged = t.diverged_at === null ? "" : `; diverged at step ${t.diverged_at.toLocaleString("en")}`;
  const clipped = ["l2", "competition", "loss"].some((k) => c[k].some((v) => v !== null && v < floor)) ?
    `; log axis: values below ${floor.toExponential(0)} drawn at its floor` : "";
  $("outcome").innerHTML = `outcome: <b id="outcome-name">${t.outcome.replace("_", " ")}</b> · ${peak} · ` +
    `ICL learned for ${t.icl_steps.toLocaleString("en")} steps${diverged} <small>(rows every ${t.every} steps${clipped})</small>`;
  $("command").textContent = t.command;
  $("download").href = "/api/trajectory.csv?" + query(explore.good);
  drawOverlay();
}

// ---- the transformer overlay ---------------------------------------------------------------------

// an opened fit.json, or the paper's run shipped with the page: the same text to the same POST /api/fit
async function openFit() {
  const file = $("fit-file").files[0];
  if (file) await loadFit(await file.text(), (body) => body.source || file.name);
}

async function openReference() {
  const answer = await fetch("/static/reference_fit.json");
  await loadFit(await answer.text(), (body) => `the paper's run (${body.source})`);
}

async function loadFit(text, label) {
  const answer = await fetch("/api/fit", {method: "POST", body: text});
  const body = await answer.json();
  if (!answer.ok) {
    setMessage(`${body.error} (the last good view is kept)`, body.option);
    return;
  }
  setMessage("");
  explore.fit = body;
  const p = body.params;
  $("fit-info").textContent = `${label(body)}: α ${p.alpha.toPrecision(3)}, μ1 ${p.mu1.toPrecision(3)}, ` +
    `μ2 ${p.mu2.toPrecision(3)}, tau ${p.tau.toPrecision(4)} sequences per toy step, ${body.link} link. ` +
    `The fit's nd_ratio ${p.nd_ratio.toPrecision(3)} (d's rate) has no control here: the live toy runs at the draw's ` +
    `own rate, the fit's own curve is drawn dashed.`;
  $("fit-apply").disabled = false;
  document.querySelector('#tabs button[data-tab="transformer"]').disabled = false;
  showTab("transformer");
  applyFit();
}

function applyFit() {
  const f = explore.fit;
  if (!f) return;
  const changes = {alpha: String(f.params.alpha), mu1: String(f.params.mu1), mu2: String(f.params.mu2),
    lr: String(f.lr), seed: String(f.seed), dims: f.dims.join(","), steps: String(f.steps)};
  explore.state = {...explore.state, ...changes};
  showState();
  request("trajectory");
  request("diagram");
}

function drawOverlay() {
  const f = explore.fit, t = explore.traj;
  if (!f || !t || !t.mapped) return;
  const m = f.measured;
  for (const key of ["icl", "ciwl"]) {
    const measured = [m.step, m[key], m[key + "_fitted"] || m.step.map(() => null)];
    const live = [t.columns.step, t.mapped[key]];
    const joined = uPlot.join([measured, live]);
    plot(key, joined);
  }
}

// ---- the phase diagram ---------------------------------------------------------------------------

const PLOT = {left: 58, top: 12, width: 344, height: 330};

function extent(values) {
  const d = values.length > 1 ? values[1] - values[0] : 1;
  return [values[0] - d / 2, values[values.length - 1] + d / 2];
}

function mapping() {
  const d = explore.diagram;
  const [x0, x1] = extent(d.alpha), [y0, y1] = extent(d.mu1);
  return {
    toPx: (a, m) => [PLOT.left + (a - x0) / (x1 - x0) * PLOT.width, PLOT.top + PLOT.height - (m - y0) / (y1 - y0) * PLOT.height],
    toData: (px, py) => [x0 + (px - PLOT.left) / PLOT.width * (x1 - x0), y0 + (PLOT.top + PLOT.height - py) / PLOT.height * (y1 - y0)],
  };
}

// where a point (alpha, mu1) is on the canvas, in CSS pixels (for a test that clicks there)
explore.toPx = (alpha, mu1) => mapping().toPx(alpha, mu1);

function drawDiagram() {
  const d = explore.diagram;
  const canvas = $("diagram-canvas"), ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== 420 * dpr) {
    canvas.width = 420 * dpr; canvas.height = 400 * dpr;
    canvas.style.width = "420px"; canvas.style.height = "400px";
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, 420, 400);
  if (!d) return;
  const {toPx} = mapping();
  const n = d.alpha.length, m = d.mu1.length;
  const cw = PLOT.width / n, ch = PLOT.height / m;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      ctx.fillStyle = d.colors[d.outcome[i][j]];
      ctx.fillRect(PLOT.left + i * cw, PLOT.top + PLOT.height - (j + 1) * ch, cw + 0.5, ch + 0.5);
    }
  }
  ctx.lineWidth = 4;
  ctx.strokeStyle = "#000";
  for (const b of d.boundaries) {
    ctx.beginPath();
    b.x.forEach((x, k) => { const [px, py] = toPx(x, b.y[k]); k ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
    ctx.stroke();
  }
  // axes
  ctx.lineWidth = 1;
  ctx.strokeRect(PLOT.left, PLOT.top, PLOT.width, PLOT.height);
  ctx.fillStyle = "#222";
  ctx.font = "11px system-ui, sans-serif";
  for (let k = 0; k <= 4; k++) {
    const a = d.alpha[0] + k / 4 * (d.alpha[n - 1] - d.alpha[0]), mu = d.mu1[0] + k / 4 * (d.mu1[m - 1] - d.mu1[0]);
    const [px] = toPx(a, 0), [, py] = toPx(0, mu);
    ctx.textAlign = "center";
    ctx.fillText(String(Number(a.toPrecision(3))), px, PLOT.top + PLOT.height + 14);
    ctx.textAlign = "right";
    ctx.fillText(String(Number(mu.toPrecision(3))), PLOT.left - 4, py + 4);
  }
  ctx.textAlign = "center";
  ctx.fillText("competition α", PLOT.left + PLOT.width / 2, PLOT.top + PLOT.height + 30);
  ctx.save();
  ctx.translate(14, PLOT.top + PLOT.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("ICL offset μ1", 0, 0);
  ctx.restore();
  // the current point (the last good view's), clipped to the plot
  const s = explore.good || explore.state;
  const [a, mu] = [Number(s.alpha), Number(s.mu1)];
  if (isFinite(a) && isFinite(mu)) {
    let [px, py] = toPx(a, mu);
    px = Math.min(Math.max(px, PLOT.left), PLOT.left + PLOT.width);
    py = Math.min(Math.max(py, PLOT.top), PLOT.top + PLOT.height);
    ctx.beginPath();
    ctx.arc(px, py, 6, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#000";
    ctx.stroke();
    explore.point = {x: px, y: py, alpha: a, mu1: mu};
  }
  const legend = d.outcomes.map((name, k) => `<span><i style="background:${d.colors[k]}"></i>${name.replace("_", " ")}</span>`);
  legend.push(...d.boundaries.map((b) => `<span><i style="background:#000"></i>${b.label}</span>`));
  $("legend").innerHTML = legend.join("");
  const st = d.state;
  $("diagram-note").textContent = `μ2 = ${st.mu2}, ${Number(st.steps).toLocaleString("en")} gd steps (lr ${st.lr}), ` +
    `${st.seed === "7" ? "the paper's draw" : "draw " + st.seed}; click to move the point`;
  $("diagram-command").textContent = d.command;
}

function clickDiagram(event) {
  if (!explore.diagram) return;
  const rect = $("diagram-canvas").getBoundingClientRect();
  const [a, mu] = mapping().toData(event.clientX - rect.left, event.clientY - rect.top);
  const amax = explore.diagram.alpha[explore.diagram.alpha.length - 1], mmax = explore.diagram.mu1[explore.diagram.mu1.length - 1];
  const alpha = String(Number(Math.min(Math.max(a, 0), amax).toPrecision(3)));
  const mu1 = String(Number(Math.min(Math.max(mu, 0), mmax).toPrecision(3)));
  $("alpha").value = alpha; $("mu1").value = mu1;
  $("alpha-slider").value = sliderPos("alpha", alpha); $("mu1-slider").value = sliderPos("mu1", mu1);
  set({alpha, mu1});
}

// ---- start -----------------------------------------------------------------------------------------

readUrl();
showState();
bindControls();
showTab(explore.tab === "transformer" ? "losses" : explore.tab);
request("trajectory");
request("diagram");
