// convcalc report, part 2 of 6: the architecture diagram, laid out by dagre (blocks open or closed).
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
// ``text`` cut from the left ("…" and its end: a layer's own name is at the end) to fit ``px`` pixels in ``font``.
const MEASURE = document.createElement("canvas").getContext("2d");
const FAMILY = getComputedStyle(document.body).fontFamily;
function fitPx(text, px, font) {
  MEASURE.font = `${font} ${FAMILY}`;
  if (MEASURE.measureText(text).width <= px) return text;
  let lo = 0, hi = text.length;                     // the most characters of the end that fit after "…"
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (MEASURE.measureText("…" + text.slice(text.length - mid)).width <= px) lo = mid; else hi = mid - 1;
  }
  return "…" + text.slice(text.length - lo);
}
// "type · optional · rest" in ``px``: without ``optional`` (a block's layer count, also in its tooltip) where it does
// not fit, then ``rest`` (a shape: numbers are never cut while they fit) kept whole and the type cut at its end
// ("DepthwiseSepara… · 128×147×147"), so what is left of a type reads from its start.
function fitTypeLine(type, rest, px, font, optional = "") {
  MEASURE.font = `${font} ${FAMILY}`;
  if (optional && MEASURE.measureText(`${type} · ${optional} · ${rest}`).width <= px) return `${type} · ${optional} · ${rest}`;
  const whole = `${type} · ${rest}`;
  if (MEASURE.measureText(whole).width <= px) return whole;
  const room = px - MEASURE.measureText(` · ${rest}`).width;
  let lo = 0, hi = type.length;                     // the most characters of the type's start that fit before "…"
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (MEASURE.measureText(type.slice(0, mid) + "…").width <= room) lo = mid; else hi = mid - 1;
  }
  return lo >= 3 ? `${type.slice(0, lo)}… · ${rest}` : fitPx(whole, px, font);
}

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
    let attrs, tip, extra = [];
    if (n.kind === "group") {
      const group = n.group, out = BY_NAME.get(group.output);
      const count = LAYERS.filter((l) => l.groups.includes(group.name)).length;
      attrs = {class: "node group", "data-group": group.name, onclick: () => openGroup(group.name)};
      tip = `block ${group.name} (${group.type}, ${count} layers): click to open`;
      lines.push(["name", "▸ " + fitPx(group.name, n.width - 28, "600 12px")],
        ["", (out ? fitTypeLine(group.type, shape(out.output_shape), n.width - 16, "11px", `${count} layers`)
          : fitTypeLine(group.type, `${count} layers`, n.width - 16, "11px"))],
        ["", `${human(group.params)} params · ${human(group.macs)} MACs`]);
      extra.push(svg("rect", {class: "outer", x: x - 3, y: y - 3, width: n.width + 6, height: n.height + 6,
        fill: "none"}));
    } else {
      const l = n.layer, lint = LINT.get(l.name), run = RUN.get(l.name);
      attrs = {class: "node" + (l.name === selected ? " selected" : "") + (lint ? " flagged" : ""),
        "data-layer": l.name, onclick: () => select(l.name, false), onmouseenter: () => details(l.name),
        onmouseleave: () => { if (selected) details(selected); else hint(); }};
      tip = `${l.name} (${l.type})`;
      lines.push(["name", fitPx(l.name, n.width - (run ? 30 : 16), "600 12px")],
        ["", fitTypeLine(l.type, shape(l.output_shape), n.width - 16, "11px")],
        ["", `${human(l.params)} params · ${human(l.macs)} MACs`]);
      if (run) extra.push(svg("text", {x: x + n.width - 8, y: y + 14, "text-anchor": "end",
        class: "badge " + (runOk(run) ? "ok" : "bad"), fill: runOk(run) ? "#2f855a" : "#c53030"}, runOk(run) ? "✓" : "✗"));
      if (lint) extra.push(svg("text", {x: x + n.width - 8, y: y + n.height - 6, "text-anchor": "end",
        class: "badge", fill: "#b7791f"}, "⚠" + lint.length));
    }
    const node = svg("g", attrs, ...extra, svg("rect", {x, y, width: n.width, height: n.height, fill: colour(n.value)}));
    lines.forEach(([cls, text], i) => node.append(svg("text", {x: x + 8, y: y + 15 + i * 15, class: cls}, text)));
    node.append(svg("title", {}, tip + " · " + MEASURE_TEXT[measure](n.value)));
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
