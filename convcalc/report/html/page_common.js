// convcalc report, part 1 of 6 (page.py joins the parts, in order, inside one function): the payload,
// formatting, per-layer facts, header and totals. Every number shown is the payload's (analyze/lint/run
// JSON, convcalc/report/html/payload.py); the page only sums them for the charts and formats them.
const started = performance.now();
const P = JSON.parse(document.getElementById("payload").textContent);
const A = P.analysis;
const LAYERS = A.layers;
const BY_NAME = new Map(LAYERS.map((l, i) => [l.name, Object.assign({index: i}, l)]));
const GROUPS = new Map(A.groups.map((g) => [g.name, g]));
const DTYPE_BYTES = A.totals.activations ? A.totals.activation_bytes / A.totals.activations : 4;
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const api = window.convcalcReport = {payload: P, rendered: false, renderMs: null, errors: []};

// ------------------------------------------------------------------ formatting
const exact = (n) => (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US");
function human(n) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  for (const [v, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) {
    if (a >= v) return (n / v).toFixed(n / v >= 100 ? 0 : n / v >= 10 ? 1 : 2) + " " + s;
  }
  return String(n);
}
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v >= 100 ? 0 : 1) : v) + " " + units[i];
}
const shape = (s) => s.length ? s.join("×") : "scalar";
const axes = (v) => v === null || v === undefined ? "—" : (v.every((x) => x === v[0]) ? String(v[0]) : v.join("×"));
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ------------------------------------------------------------------ per-layer facts from the payload
const LINT = new Map();
for (const f of (P.lint ? P.lint.findings : [])) {
  if (!f.layer) continue;
  const name = BY_NAME.has(f.layer) ? f.layer : [...BY_NAME.keys()].find((n) => n.endsWith("." + f.layer)) || f.layer;
  if (!LINT.has(name)) LINT.set(name, []);
  LINT.get(name).push(f);
}
const RUN = new Map((P.run ? P.run.layers : []).map((r) => [r.name, r]));
const runOk = (r) => r.shape_ok && r.macs_ok && r.finite && r.rf_ok !== false;
const rfSize = (l) => Math.max(...l.rf.size);
function measureOf(l, m) {
  if (m === "activations") return l.activations * DTYPE_BYTES;
  if (m === "rf") return rfSize(l);
  return l[m];
}
function groupMeasure(g, m) {
  if (m === "params" || m === "macs") return g[m];
  const out = BY_NAME.get(g.output);
  if (m === "rf") return out ? rfSize(out) : 0;
  let s = 0;
  for (const l of LAYERS) if (l.groups.includes(g.name)) s += l.activations * DTYPE_BYTES;
  return s;
}
const MEASURE_TEXT = {macs: (v) => human(v) + " MACs", params: (v) => human(v) + " params",
  activations: (v) => bytes(v), rf: (v) => "RF " + v};

// ------------------------------------------------------------------ header and totals
function header() {
  $("title").textContent = "convcalc report: " + A.name;
  $("subtitle").textContent = `${P.source} · input ${shape(A.input_shape)} → output ${shape(A.output_shape)}` +
    ` (${A.output}) · ${LAYERS.length} layers, ${A.groups.length} blocks · ${A.dtype}`;
  const t = A.totals;
  const cards = [["parameters", exact(t.params), human(t.params) + ` (${exact(t.trainable_params)} trainable)`],
    ["MACs", exact(t.macs), human(t.macs) + " · FLOPs " + human(t.flops)],
    ["buffers", exact(t.buffers), "not parameters (running statistics)"],
    ["activations", exact(t.activations), bytes(t.activation_bytes) + " in all"],
    ["peak activation memory", bytes(t.peak_activation_bytes), exact(t.peak_activation_bytes) + " B"],
    ["parameter memory", bytes(t.param_bytes), exact(t.param_bytes) + " B"]];
  if (P.lint) cards.push(["lint", String(P.lint.findings.length) + " finding" + (P.lint.findings.length === 1 ? "" : "s"),
    ["error", "warning", "info"].map((s) => `${P.lint.summary[s] || 0} ${s}`).join(" · ")]);
  if (P.run) cards.push(["run", P.run.ok ? "✓ all checks" : "✗ a check failed", (P.run.seconds * 1000).toFixed(0) + " ms"]);
  for (const [k, v, s] of cards) {
    $("totals").append(el("div", {class: "card", "data-total": k}, el("div", {class: "k"}, k), el("div", {class: "v"}, v),
      el("div", {class: "s"}, s)));
  }
}
