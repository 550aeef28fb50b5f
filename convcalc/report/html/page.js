// convcalc report: draws the payload (convcalc/report/html/payload.py) that the page carries. Every number shown
// is the payload's (analyze/lint/run JSON); the page only sums them for the charts and formats them.
"use strict";
(function () {
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

// ------------------------------------------------------------------ the diagram
const MAX_DEPTH = Math.max(0, ...A.groups.map((g) => g.depth));
const expanded = new Set();
let selected = null, zoom = 1, layoutSize = [0, 0];
const NODE_W = 220, NODE_H = 54, MAX_NODES = 600;
let drawAnyway = false;

function openTo(depth) {
  expanded.clear();
  for (const g of A.groups) if (g.depth < depth) expanded.add(g.name);
}
function visibleCount(depth) {
  const shown = new Set();
  for (const l of LAYERS) {
    const g = l.groups.find((name) => GROUPS.get(name).depth >= depth);
    shown.add(g || l.name);
  }
  return shown.size;
}
// A layer's node: itself, or the outermost closed block holding it.
function representative(l) {
  for (const g of l.groups) if (!expanded.has(g)) return "g:" + g;
  return "l:" + l.name;
}
function colourScale(values) {
  const positive = values.filter((v) => v > 0);
  const lo = Math.log10(Math.min(...positive, 1)), hi = Math.log10(Math.max(...positive, 1));
  const stops = [[238, 244, 252], [189, 215, 238], [253, 208, 138], [252, 141, 89], [215, 48, 39]];
  return (v) => {
    if (!(v > 0)) return "#ffffff";
    const t = hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 1;
    const x = t * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  };
}
function fit(text, chars) { return text.length <= chars ? text : "…" + text.slice(text.length - chars + 1); }

function drawDiagram() {
  const t0 = performance.now();
  const measure = $("measure").value;
  const g = new dagre.graphlib.Graph({compound: true});
  g.setGraph({rankdir: "TB", nodesep: 18, ranksep: 30, edgesep: 8, marginx: 16, marginy: 16});
  g.setDefaultEdgeLabel(() => ({}));
  const nodes = new Map();
  g.setNode("l:input", {width: 150, height: 36, kind: "input"});
  for (const l of LAYERS) {
    const id = representative(l);
    if (nodes.has(id)) continue;
    if (id.startsWith("g:")) {
      const group = GROUPS.get(id.slice(2));
      nodes.set(id, {kind: "group", group, value: groupMeasure(group, measure)});
    } else nodes.set(id, {kind: "layer", layer: l, value: measureOf(l, measure)});
  }
  if (nodes.size > MAX_NODES && !drawAnyway) {        // a layout of thousands of nodes takes minutes: ask first
    $("diagram").replaceChildren(el("div", {class: "too-many"}, `${nodes.size} nodes to lay out: more than ${MAX_NODES}` +
      ` (the layout may take minutes). Close blocks (a smaller depth) to draw fewer, or `,
      el("button", {type: "button", onclick: () => { drawAnyway = true; drawDiagram(); }}, `draw all ${nodes.size}`)));
    api.nodeCount = 0;
    return;
  }
  const colour = colourScale([...nodes.values()].map((n) => n.value));
  for (const [id, n] of nodes) g.setNode(id, Object.assign({width: NODE_W, height: NODE_H}, n));
  for (const name of expanded) {      // open blocks whose ancestors are open: frames around their layers
    const group = GROUPS.get(name);
    let ok = true;
    for (let p = group.parent; p; p = GROUPS.get(p).parent) if (!expanded.has(p)) ok = false;
    if (ok) g.setNode("c:" + name, {kind: "cluster", group, paddingTop: 20});
  }
  for (const [id, n] of nodes) {
    const gs = n.kind === "layer" ? n.layer.groups : n.group.parent ? ancestorsOf(n.group.name) : [];
    const parent = [...gs].reverse().find((name) => g.hasNode("c:" + name) && name !== (n.group && n.group.name));
    if (parent) g.setParent(id, "c:" + parent);
  }
  for (const name of expanded) {
    const group = GROUPS.get(name);
    if (g.hasNode("c:" + name) && group.parent && g.hasNode("c:" + group.parent)) g.setParent("c:" + name, "c:" + group.parent);
  }
  const seen = new Set();
  for (const l of LAYERS) {
    const to = representative(l);
    for (const input of l.inputs) {
      const from = input === "input" ? "l:input" : representative(BY_NAME.get(input));
      const key = from + "\u0000" + to;
      if (from === to || seen.has(key)) continue;
      seen.add(key);
      g.setEdge(from, to);
    }
  }
  dagre.layout(g);
  const graph = g.graph();
  layoutSize = [graph.width, graph.height];
  const root = svg("svg", {id: "diagram-svg", width: graph.width * zoom, height: graph.height * zoom,
    viewBox: `0 0 ${graph.width} ${graph.height}`});
  root.append(svg("defs", {}, svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse"}, svg("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: "#8d97a8"}))));
  const clusters = svg("g", {}), edges = svg("g", {}), boxes = svg("g", {}), labels = svg("g", {});
  root.append(clusters, edges, boxes, labels);
  const clusterIds = g.nodes().filter((id) => id.startsWith("c:"));
  clusterIds.sort((a, b) => GROUPS.get(a.slice(2)).depth - GROUPS.get(b.slice(2)).depth);
  for (const id of clusterIds) {
    const n = g.node(id), name = id.slice(2);
    const title = `▾ ${fit(name, 34)}  ${n.group.type}`;
    const label = svg("text", {x: n.x - n.width / 2 + 10, y: n.y - n.height / 2 + 4, "data-close": name,
      onclick: () => { closeGroup(name); }}, title);
    label.append(svg("title", {}, `close the block ${name}`));
    clusters.append(svg("g", {class: "cluster", "data-cluster": name},
      svg("rect", {x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height})));
    labels.append(svg("g", {class: "cluster"}, svg("rect", {class: "tag", x: n.x - n.width / 2 + 6,
      y: n.y - n.height / 2 - 7, width: 6.6 * title.length + 8, height: 13}), label));
  }
  for (const e of g.edges()) {
    const pts = g.edge(e).points;
    let d = `M ${pts[0].x} ${pts[0].y}`;
    for (let i = 1; i < pts.length; i++) d += ` L ${pts[i].x} ${pts[i].y}`;
    edges.append(svg("path", {class: "edge", d, "marker-end": "url(#arrow)"}));
  }
  for (const id of g.nodes()) {
    if (id.startsWith("c:")) continue;
    const n = g.node(id), x = n.x - n.width / 2, y = n.y - n.height / 2;
    if (n.kind === "input") {
      boxes.append(svg("g", {class: "node", "data-input": ""},
        svg("rect", {x, y, width: n.width, height: n.height, fill: "#e8ecf2"}),
        svg("text", {x: n.x, y: n.y - 3, "text-anchor": "middle", class: "name"}, "input"),
        svg("text", {x: n.x, y: n.y + 12, "text-anchor": "middle"}, shape(A.input_shape))));
      continue;
    }
    const lines = [];
    let attrs, extra = [];
    if (n.kind === "group") {
      const group = n.group, out = BY_NAME.get(group.output);
      const count = LAYERS.filter((l) => l.groups.includes(group.name)).length;
      attrs = {class: "node group", "data-group": group.name, onclick: () => openGroup(group.name)};
      lines.push(["name", "▸ " + fit(group.name, 22) + "  " + fit(group.type, 14)],
        ["", `${count} layers · ${out ? shape(out.output_shape) : ""}`],
        ["", `${human(group.params)} params · ${human(group.macs)} MACs`]);
      extra.push(svg("rect", {class: "outer", x: x - 3, y: y - 3, width: n.width + 6, height: n.height + 6,
        fill: "none"}));
    } else {
      const l = n.layer, lint = LINT.get(l.name), run = RUN.get(l.name);
      attrs = {class: "node" + (l.name === selected ? " selected" : "") + (lint ? " flagged" : ""),
        "data-layer": l.name, onclick: () => select(l.name, false), onmouseenter: () => details(l.name),
        onmouseleave: () => { if (selected) details(selected); else hint(); }};
      lines.push(["name", fit(l.name, 30)], ["", `${fit(l.type, 16)} · ${shape(l.output_shape)}`],
        ["", `${human(l.params)} params · ${human(l.macs)} MACs`]);
      if (run) extra.push(svg("text", {x: x + n.width - 8, y: y + 14, "text-anchor": "end",
        class: "badge " + (runOk(run) ? "ok" : "bad"), fill: runOk(run) ? "#2f855a" : "#c53030"}, runOk(run) ? "✓" : "✗"));
      if (lint) extra.push(svg("text", {x: x + n.width - 8, y: y + n.height - 6, "text-anchor": "end",
        class: "badge", fill: "#b7791f"}, "⚠" + lint.length));
    }
    const node = svg("g", attrs, ...extra, svg("rect", {x, y, width: n.width, height: n.height, fill: colour(n.value)}));
    lines.forEach(([cls, text], i) => node.append(svg("text", {x: x + 8, y: y + 15 + i * 15, class: cls}, text)));
    node.append(svg("title", {}, (n.kind === "group" ? "block " + n.group.name + ": click to open" : n.layer.name) +
      " · " + MEASURE_TEXT[measure](n.value)));
    boxes.append(node);
  }
  const box = $("diagram");
  box.replaceChildren(root);
  legend(measure, [...nodes.values()].map((n) => n.value), colour);
  api.nodeCount = nodes.size;
  api.lastLayoutMs = performance.now() - t0;
}
function ancestorsOf(name) {
  const out = [];
  for (let p = GROUPS.get(name).parent; p; p = GROUPS.get(p).parent) out.unshift(p);
  return out;
}
function legend(measure, values, colour) {
  const positive = values.filter((v) => v > 0);
  const lo = Math.min(...positive), hi = Math.max(...positive);
  const bar = el("span", {class: "bar"});
  bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) =>
    colour(Math.pow(10, Math.log10(lo) + t * (Math.log10(hi) - Math.log10(lo))))).join(",")})`;
  $("legend").replaceChildren(positive.length ? MEASURE_TEXT[measure](lo) : "", bar,
    positive.length ? MEASURE_TEXT[measure](hi) : "", el("span", {}, " (log scale; white: 0)"));
}
function openGroup(name) {
  for (const p of ancestorsOf(name)) expanded.add(p);
  expanded.add(name);
  drawDiagram();
}
function closeGroup(name) {
  expanded.delete(name);
  for (const g of A.groups) if (ancestorsOf(g.name).includes(name)) expanded.delete(g.name);
  if (selected && BY_NAME.get(selected).groups.includes(name)) selected = null;
  drawDiagram();
}
function setZoom(z) {
  zoom = Math.max(0.15, Math.min(3, z));
  const s = $("diagram-svg");
  if (s) { s.setAttribute("width", layoutSize[0] * zoom); s.setAttribute("height", layoutSize[1] * zoom); }
}
function fitZoom() { setZoom(Math.min(1, ($("diagram").clientWidth - 4) / layoutSize[0])); }

// ------------------------------------------------------------------ the details of one layer
function row(label, value, field, raw) {
  const attrs = {class: "num"};
  if (field) { attrs["data-field"] = field; attrs["data-value"] = JSON.stringify(raw); }
  return el("tr", {}, el("td", {}, label), el("td", attrs, value));
}
function details(name) {
  const l = BY_NAME.get(name), note = P.layers[name] || {}, rf = l.rf;
  const box = $("details");
  const t = el("table", {});
  t.append(row("type", l.type, "type", l.type), row("inputs", l.inputs.join(", "), "inputs", l.inputs),
    row("output shape", shape(l.output_shape), "output_shape", l.output_shape),
    row("params", exact(l.params), "params", l.params),
    row("trainable", exact(l.trainable_params), "trainable_params", l.trainable_params),
    row("buffers", exact(l.buffers), "buffers", l.buffers), row("MACs", exact(l.macs), "macs", l.macs),
    row("FLOPs", exact(l.flops), "flops", l.flops),
    row("activations", `${exact(l.activations)} (${bytes(l.activations * DTYPE_BYTES)})`, "activations", l.activations),
    row("weights", Object.entries(l.weights).map(([k, v]) => `${k} ${shape(v)}`).join(", ") || "—", "weights", l.weights));
  if (l.tied_to) t.append(row("tied to", l.tied_to, "tied_to", l.tied_to));
  if (l.groups.length) t.append(row("in blocks", l.groups.join(" › "), "groups", l.groups));
  const a = el("table", {});
  for (const [k, v] of Object.entries(note.args || {})) a.append(row(k, JSON.stringify(v)));
  const r = el("table", {});
  if (rf.whole_input) r.append(row("field", "the whole input", "rf.whole_input", true));
  r.append(row("size (largest)", axes(rf.size), "rf.size", rf.size), row("size (smallest)", axes(rf.size_min), "rf.size_min", rf.size_min));
  if (!rf.whole_input) r.append(row("stride", axes(rf.stride), "rf.stride", rf.stride), row("padding", axes(rf.padding), "rf.padding", rf.padding),
    row("widest path", axes(rf.path_size_max), "rf.path_size_max", rf.path_size_max),
    row("narrowest path", axes(rf.path_size_min), "rf.path_size_min", rf.path_size_min));
  r.append(row("alignment", rf.misaligned ? "misaligned: its inputs' grids differ" : "aligned", "rf.misaligned", rf.misaligned));
  const parts = [el("h3", {}, name), el("div", {class: "hint"}, note.where ? "defined at " + note.where : ""), t,
    el("h4", {}, "arguments"), a, el("h4", {}, "receptive field"), r];
  if (l.parts.length) {
    const p = el("table", {});
    for (const part of l.parts) p.append(row(part.name.slice(name.length + 1) + " (" + part.type + ")",
      `${shape(part.output_shape)} · ${exact(part.params)} params · ${exact(part.macs)} MACs`));
    parts.push(el("h4", {}, "parts"), p);
  }
  const findings = LINT.get(name) || [];
  parts.push(el("h4", {}, `lint (${findings.length})`));
  if (!findings.length) parts.push(el("div", {class: "hint"}, P.lint ? "no findings" : (P.lint_note || "not linted")));
  for (const f of findings) parts.push(finding(f, false));
  const run = RUN.get(name);
  if (run) {
    const k = el("table", {});
    k.append(row("checks", runOk(run) ? "✓ all confirmed" : "✗ a check failed", "run.ok", runOk(run)),
      row("shape", `${shape(run.actual_shape)} ${run.shape_ok ? "✓" : "✗ predicted " + shape(run.predicted_shape)}`),
      row("MACs executed", `${exact(run.executed_macs)} ${run.macs_ok ? "✓" : "✗ predicted " + exact(run.predicted_macs)}`),
      row("finite", run.finite ? "✓" : "✗ NaN/Inf"), row("RF proof", run.rf_ok === null ? "not checked" : run.rf_ok ? "✓" : "✗"),
      row("time", (run.seconds * 1000).toFixed(2) + " ms"), row("algorithm", algorithm(run)));
    parts.push(el("h4", {}, "run"), k);
    if (P.thumbnails[name]) parts.push(el("img", {src: P.thumbnails[name], alt: "feature maps of " + name}));
  }
  box.replaceChildren(...parts);
  box.dataset.layer = name;
}
const HINT = $("details").innerHTML;
function hint() { $("details").innerHTML = HINT; delete $("details").dataset.layer; }
function algorithm(run) {
  if (run.folded) return "folded into the layer before";
  if (run.fused_into) return "added inside " + run.fused_into + "'s product";
  return run.transform || "direct";
}
function finding(f, link) {
  const d = el("div", {class: "finding " + f.severity}, el("span", {class: "rule"}, f.rule),
    el("span", {class: f.severity === "error" ? "bad" : f.severity === "warning" ? "warn" : ""}, f.severity + " "),
    link && f.layer ? el("a", {class: "layer", onclick: () => select(LINTNAME(f), true)}, f.layer) : null,
    el("div", {}, f.message), el("div", {class: "hint"}, `${f.path}:${f.line}:${f.column}`));
  return d;
}
const LINTNAME = (f) => BY_NAME.has(f.layer) ? f.layer : ([...LINT.entries()].find(([, v]) => v.includes(f)) || [f.layer])[0];

function select(name, reveal) {
  if (!BY_NAME.has(name)) return;
  selected = name;
  const l = BY_NAME.get(name);
  let redraw = false;
  for (const g of l.groups) if (!expanded.has(g)) { expanded.add(g); redraw = true; }
  if (redraw) drawDiagram();
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  const node = document.querySelector(`.node[data-layer="${CSS.escape(name)}"]`);
  if (node) {
    node.classList.add("selected");
    if (reveal || redraw) node.scrollIntoView({block: "center", inline: "center"});
  }
  document.querySelectorAll("#table tr.selected").forEach((r) => r.classList.remove("selected"));
  const tr = document.querySelector(`#table tr[data-layer="${CSS.escape(name)}"]`);
  if (tr) tr.classList.add("selected");
  details(name);
  if (P.regions.layers[name]) { $("rf-layer").value = name; rfShow(name, null); }
}

// ------------------------------------------------------------------ the table
const COLUMNS = [
  ["#", (l) => l.index + 1, (l) => l.index, true], ["layer", (l) => l.name, (l) => l.name],
  ["type", (l) => l.type, (l) => l.type], ["output", (l) => shape(l.output_shape), (l) => l.activations / (l.output_shape[0] || 1)],
  ["params", (l) => exact(l.params), (l) => l.params, true], ["MACs", (l) => exact(l.macs), (l) => l.macs, true],
  ["activations", (l) => exact(l.activations), (l) => l.activations, true],
  ["RF", (l) => axes(l.rf.size), (l) => rfSize(l), true],
  ["stride", (l) => axes(l.rf.stride), (l) => l.rf.stride ? Math.max(...l.rf.stride) : Infinity, true],
  ["aligned", (l) => l.rf.misaligned ? "✗" : "✓", (l) => l.rf.misaligned ? 1 : 0],
  ["lint", (l) => (LINT.get(l.name) || []).length || "", (l) => (LINT.get(l.name) || []).length, true]];
if (P.run) COLUMNS.push(["run", (l) => RUN.has(l.name) ? (runOk(RUN.get(l.name)) ? "✓" : "✗") : "",
  (l) => RUN.has(l.name) ? (runOk(RUN.get(l.name)) ? 0 : 1) : -1],
  ["ms", (l) => RUN.has(l.name) ? (RUN.get(l.name).seconds * 1000).toFixed(2) : "", (l) => RUN.has(l.name) ? RUN.get(l.name).seconds : -1, true],
  ["algorithm", (l) => RUN.has(l.name) ? algorithm(RUN.get(l.name)) : "", (l) => RUN.has(l.name) ? algorithm(RUN.get(l.name)) : ""]);
let sortBy = 0, sortDir = 1;
function table() {
  const head = el("tr", {});
  COLUMNS.forEach(([label, , , num], i) => head.append(el("th", {class: num ? "num" : "", onclick: () => {
    sortDir = sortBy === i ? -sortDir : (num ? -1 : 1); sortBy = i; fillTable(); }}, label)));
  $("table").tHead.replaceChildren(head);
  fillTable();
}
function fillTable() {
  const key = COLUMNS[sortBy][2];
  const rows = [...BY_NAME.values()].sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
  const body = document.createDocumentFragment();
  for (const l of rows) {
    const tr = el("tr", {"data-layer": l.name, onclick: () => select(l.name, true)});
    if (l.name === selected) tr.className = "selected";
    COLUMNS.forEach(([label, text, , num]) => {
      const value = text(l);
      const cls = (num ? "num " : "") + (value === "✓" ? "ok" : value === "✗" ? "bad" : "");
      tr.append(el("td", {class: cls}, String(value)));
    });
    body.append(tr);
  }
  $("table").tBodies[0].replaceChildren(body);
  document.querySelectorAll("#table th").forEach((th, i) => {
    th.textContent = COLUMNS[i][0] + (i === sortBy ? (sortDir > 0 ? " ▲" : " ▼") : ""); });
  filter();
}
function filter() {
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const tr of $("table").tBodies[0].rows) {
    const l = BY_NAME.get(tr.dataset.layer), text = (l.name + " " + l.type).toLowerCase();
    const ok = words.every((w) => text.includes(w));
    tr.hidden = !ok; shown += ok;
  }
  $("filter-count").textContent = `${shown} of ${LAYERS.length} layers`;
}

// ------------------------------------------------------------------ cost charts
function bars(target, items, format) {
  items = items.filter(([, v]) => v > 0);
  const max = Math.max(...items.map(([, v]) => v), 1), total = items.reduce((s, [, v]) => s + v, 0) || 1;
  const labelW = 190, barW = 300, rowH = 18, width = labelW + barW + 130;
  const root = svg("svg", {class: "bars", width, height: items.length * rowH + 6});
  items.forEach(([label, v, name], i) => {
    const y = i * rowH + 3;
    const g = svg("g", name ? {style: "cursor:pointer", onclick: () => select(name, true)} : {},
      svg("text", {x: labelW - 6, y: y + 12, "text-anchor": "end"}, fit(label, 28)),
      svg("rect", {x: labelW, y: y + 2, width: Math.max(1, barW * v / max), height: rowH - 5}),
      svg("text", {x: labelW + Math.max(1, barW * v / max) + 4, y: y + 12}, `${format(v)} (${(100 * v / total).toFixed(1)}%)`),
      svg("title", {}, `${label}: ${exact(v)}`));
    root.append(g);
  });
  $(target).replaceChildren(items.length ? root : el("div", {class: "hint"}, "nothing to show (all zero)"));
}
function costCharts() {
  const m = $("cost-measure").value, format = m === "macs" ? (v) => human(v) : (v) => human(v);
  const stages = [], seen = new Set();
  for (const l of LAYERS) {
    const top = l.groups[0];
    if (top) { if (!seen.has(top)) { seen.add(top); const g = GROUPS.get(top); stages.push([`${top} (${g.type})`, g[m], null]); } }
    else stages.push([l.name, l[m], l.name]);
  }
  bars("by-stage", stages, format);
  const types = new Map();
  for (const l of LAYERS) types.set(l.type, (types.get(l.type) || 0) + l[m]);
  bars("by-type", [...types.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v, null]), format);
}

// ------------------------------------------------------------------ receptive fields
function growthChart() {
  const rows = P.growth, inputMax = Math.max(...A.input_shape.slice(1), 1);
  if (!rows.length || A.input_shape.length < 2) { $("growth").replaceChildren(el("div", {class: "hint"}, "no spatial axes")); return; }
  const size = (r) => Math.max(...r.size);
  const top = Math.max(inputMax, ...rows.map(size));
  const W = Math.max(640, $("growth").clientWidth - 8), H = 220, left = 48, bottom = 24;
  const bw = (W - left - 10) / rows.length;
  const y = (v) => H - bottom - (H - bottom - 10) * v / top;
  const root = svg("svg", {width: W, height: H});
  const magnitude = Math.pow(10, Math.floor(Math.log10(top / 4)));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((v) => top / v <= 5);
  for (let v = 0; v <= top; v += step) {
    root.append(svg("line", {x1: left, x2: W - 10, y1: y(v), y2: y(v), stroke: "#eef0f4"}),
      svg("text", {x: left - 4, y: y(v) + 4, "text-anchor": "end"}, String(v)));
  }
  root.append(svg("line", {x1: left, x2: W - 10, y1: y(inputMax), y2: y(inputMax), stroke: "#c53030", "stroke-dasharray": "4 3"}),
    svg("text", {x: left + 6, y: y(inputMax) + 13, fill: "#c53030"}, `input ${inputMax}`));
  rows.forEach((r, i) => {
    const s = size(r);
    root.append(svg("rect", {x: left + i * bw, y: y(s), width: Math.max(1, bw - 0.5), height: H - bottom - y(s),
      fill: r.whole ? "#c9d3e0" : r.misaligned ? "#dd6b20" : "#5b8fd0", style: "cursor:pointer",
      onclick: () => select(r.name, true)}, svg("title", {}, `${r.name} (${r.type}): ` +
        (r.whole ? "the whole input" : `size ${axes(r.size)}, stride ${axes(r.stride)}`) +
        `, covers ${(100 * r.coverage.reduce((a, b) => a * b, 1)).toFixed(1)}% of the input` + (r.misaligned ? ", misaligned" : ""))));
  });
  root.append(svg("text", {x: left, y: H - 6}, `${rows[0].name}`),
    svg("text", {x: W - 10, y: H - 6, "text-anchor": "end"}, `${rows[rows.length - 1].name}`),
    svg("text", {x: (W + left) / 2, y: H - 6, "text-anchor": "middle"}, "layers →  (grey: sees the whole input; orange: misaligned)"));
  $("growth").replaceChildren(root);
}
const IMAGE = new Image();
let rfUnits = null;
// A table is runs [count, first, last, step_first, step_last] of arithmetic progressions (payload.progressions).
function unitPair(table, unit) {
  let start = 0;
  for (const [count, first, last, df, dl] of P.regions.tables[table]) {
    if (unit < start + count) return first === null ? [null, null] : [first + (unit - start) * df, last + (unit - start) * dl];
    start += count;
  }
  return [null, null];
}
function regionOf(name, units) {
  const r = P.regions.layers[name];
  return {region: r.region.map((t, a) => unitPair(t, units[a])), extent: r.extent.map((t, a) => unitPair(t, units[a]))};
}
function rfSetup() {
  const names = Object.keys(P.regions.layers);
  const sel = $("rf-layer");
  for (const n of names) sel.append(el("option", {value: n}, n));
  const skipped = Object.entries(P.regions.skipped);
  if (skipped.length) $("fields").append(el("div", {class: "hint"}, "No unit regions for: " +
    skipped.map(([n, why]) => `${n} (${why})`).join("; ")));
  if (!names.length) { $("rf-text").textContent = "No layer has spatial regions (every unit sees the whole input)."; return; }
  sel.value = P.rf_layer && P.regions.layers[P.rf_layer] ? P.rf_layer : names[names.length - 1];
  sel.addEventListener("change", () => rfShow(sel.value, null));
  IMAGE.onload = () => rfShow(sel.value, null);
  IMAGE.src = P.image.png;
  $("rf-canvas").addEventListener("click", rfClick);
  if (P.erf) $("erf").append(el("figure", {}, el("figcaption", {}, `Effective receptive field of ${P.erf.layer}, unit ` +
    `(${P.erf.units.join(", ")}), ${P.erf.samples} samples`), el("img", {src: P.erf.png, alt: "ERF heatmap"})));
}
function rfScale() { return Math.max(1, Math.min(8, Math.floor(448 / Math.max(IMAGE.width, 1)))) || 1; }
// A 1-D input's strip is stretched to a twelfth of its width.
// Canvas pixels per input position across and down (the picture may show every k-th position of a large input).
function rfScales(c) {
  const n = P.image.lengths, spatial = n.length;
  return [c.width / n[spatial - 1], spatial === 1 ? c.height : c.height / n[spatial - 2]];
}
function rfClick(ev) {
  const name = $("rf-layer").value, lengths = BY_NAME.get(name).output_shape.slice(1);
  const c = $("rf-canvas"), rect = c.getBoundingClientRect(), [sx, sy] = rfScales(c);
  const pos = [(ev.clientY - rect.top) * c.height / rect.height / sy,      // row, column on the picture
    (ev.clientX - rect.left) * c.width / rect.width / sx];
  const spatial = P.image.lengths.length;
  const units = lengths.map((n, a) => Math.floor(n / 2));
  const picked = spatial === 1 ? [[0, pos[1]]] : [[spatial - 2, pos[0]], [spatial - 1, pos[1]]];
  const r = P.regions.layers[name];
  for (const [axis, p] of picked) {
    let best = 0, dist = Infinity;
    for (let u = 0; u < lengths[axis]; u++) {
      const [first, last] = unitPair(r.region[axis], u);
      if (first === null) continue;
      const d = Math.abs((first + last + 1) / 2 - p);
      if (d < dist) { dist = d; best = u; }
    }
    units[axis] = best;
  }
  rfShow(name, units);
}
function rfShow(name, units) {
  if (!P.regions.layers[name] || !IMAGE.complete) return;
  const l = BY_NAME.get(name), lengths = l.output_shape.slice(1);
  units = units || lengths.map((n) => Math.floor(n / 2));
  rfUnits = units;
  const {region, extent} = regionOf(name, units);
  const c = $("rf-canvas"), spatial = P.image.lengths.length;
  c.width = IMAGE.width * rfScale();
  c.height = spatial === 1 ? Math.max(IMAGE.height * rfScale(), Math.round(c.width / 12)) : IMAGE.height * rfScale();
  const [sx, sy] = rfScales(c);
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(IMAGE, 0, 0, c.width, c.height);
  const rows = spatial === 1 ? [0, 0] : region[spatial - 2], cols = region[spatial - 1];
  const erows = spatial === 1 ? [0, 0] : extent[spatial - 2], ecols = extent[spatial - 1];
  const height = spatial === 1 ? 1 : P.image.lengths[spatial - 2], across = P.image.lengths[spatial - 1];
  const width = Math.max(2, Math.round(c.width / 400));
  const box = (r, q, colour, dash, inset) => {     // outlined where it lies on the picture (clipped to it)
    if (r[0] === null || q[0] === null) return;
    const x0 = Math.max(q[0] * sx, 0), x1 = Math.min((q[1] + 1) * sx, c.width);
    const y0 = Math.max(r[0] * sy, 0), y1 = Math.min((r[1] + 1) * sy, c.height);
    if (x1 <= x0 || y1 <= y0) return;
    ctx.setLineDash(dash); ctx.strokeStyle = colour; ctx.lineWidth = width;
    const d = width / 2 + inset;
    ctx.strokeRect(x0 + d, y0 + d, Math.max(x1 - x0 - 2 * d, 1), Math.max(y1 - y0 - 2 * d, 1));
  };
  ctx.fillStyle = "rgba(255, 48, 48, 0.18)";
  if (rows[0] !== null && cols[0] !== null) {
    const r0 = Math.max(rows[0], 0), c0 = Math.max(cols[0], 0);
    ctx.fillRect(c0 * sx, r0 * sy, (Math.min(cols[1], across - 1) - c0 + 1) * sx, (Math.min(rows[1], height - 1) - r0 + 1) * sy);
  }
  box(rows, cols, "#ff3030", [], 0);
  box(erows, ecols, "#00e5ff", [5, 4], width + 1);
  if (rows[0] !== null && cols[0] !== null && Math.min((cols[1] - cols[0] + 1) * sx, (rows[1] - rows[0] + 1) * sy) < 12) {
    const cx = (cols[0] + cols[1] + 1) / 2 * sx, cy = (rows[0] + rows[1] + 1) / 2 * sy;   // a small region: a crosshair
    ctx.setLineDash([]); ctx.strokeStyle = "#ff3030"; ctx.lineWidth = 2;
    ctx.beginPath();
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) { ctx.moveTo(cx + 6 * dx, cy + 6 * dy); ctx.lineTo(cx + 16 * dx, cy + 16 * dy); }
    ctx.stroke();
  }
  const names = P.image.axes;
  const text = region.map((r, a) => r[0] === null ? `${names[a]}s: none` :
    `${names[a]}s ${r[0]}..${r[1]} (${r[1] - r[0] + 1}${r[0] < 0 || r[1] >= P.image.lengths[a] ? ", partly padding" : ""})` +
    (extent[a][0] !== r[0] || extent[a][1] !== r[1] ? `, reads ${extent[a][0]}..${extent[a][1]}` : ""));
  $("rf-text").replaceChildren(el("b", {}, `unit (${units.join(", ")}) of ${name}`), el("br"),
    "region: " + text.join("; "), el("br"),
    el("span", {class: "hint"}, `red: its exact region where it lies on the input (the numbers: unclipped; beyond the border` +
      ` is padding); cyan dashed: what it really reads. Input: ${P.image.source}` + (P.image.depth !== null ? `, depth slice ${P.image.depth}` : "") +
      (P.image.step > 1 ? ` (drawn at every ${P.image.step}th position)` : "")));
  $("rf-text").dataset.units = JSON.stringify(units);
  $("rf-text").dataset.region = JSON.stringify(region);
}

// ------------------------------------------------------------------ lint and run
function lintSection() {
  const body = $("lint-body");
  if (!P.lint) { body.append(el("div", {class: "hint"}, P.lint_note || "not linted")); return; }
  if (!P.lint.findings.length) body.append(el("div", {class: "ok"}, "✓ no findings"));
  for (const f of P.lint.findings) body.append(finding(f, true));
}
function runSection() {
  if (!P.run) { $("run").hidden = true; $("nav-run").hidden = true; return; }
  const r = P.run, bad = r.layers.filter((x) => !runOk(x));
  $("run-body").append(el("div", {class: r.ok ? "ok" : "bad"}, r.ok ? `✓ every prediction confirmed (${r.layers.length} layers)` :
    `✗ ${bad.length} layer(s) failed a check: ${bad.map((x) => x.name).join(", ")}`),
    el("div", {class: "hint"}, `input: ${r.input.source} ${shape(r.input.shape)} · ${(r.seconds * 1000).toFixed(0)} ms · ` +
      `executed ${exact(r.totals.executed_macs)} of ${exact(r.totals.predicted_macs)} predicted MACs. Per-layer checks: the table's ` +
      `run columns and a layer's details (feature maps there).`));
}

// ------------------------------------------------------------------ start
window.addEventListener("error", (e) => api.errors.push(String(e.message)));
header();
const depthSel = $("depth");
for (let d = 1; d <= MAX_DEPTH + 1; d++) depthSel.append(el("option", {value: d}, d > MAX_DEPTH ? "all" : String(d)));
let depth = 1;
for (let d = 1; d <= MAX_DEPTH + 1; d++) if (visibleCount(d) <= 120) depth = d;   // about 120 nodes show
depthSel.value = MAX_DEPTH ? depth : 1;
openTo(depth);
depthSel.addEventListener("change", () => { openTo(+depthSel.value); drawDiagram(); });
$("measure").addEventListener("change", drawDiagram);
$("expand-all").addEventListener("click", () => { openTo(MAX_DEPTH + 1); depthSel.value = MAX_DEPTH + 1; drawDiagram(); });
$("collapse-all").addEventListener("click", () => { openTo(1); depthSel.value = 1; drawDiagram(); });
$("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
$("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));
$("zoom-fit").addEventListener("click", fitZoom);
$("filter").addEventListener("input", filter);
$("cost-measure").addEventListener("change", costCharts);
drawDiagram();
if (layoutSize[0] > $("diagram").clientWidth) fitZoom();
table();
costCharts();
growthChart();
rfSetup();
lintSection();
runSection();
api.select = (name) => select(name, true);
api.openGroup = openGroup;
api.closeGroup = closeGroup;
api.openAll = () => $("expand-all").click();
api.renderMs = performance.now() - started;
api.rendered = true;
$("footer").textContent = `convcalc report · the page drew itself in ${api.renderMs.toFixed(0)} ms · layout by @dagrejs/dagre ${dagre.version} (MIT)`;
})();
