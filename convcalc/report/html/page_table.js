// convcalc report, part 4 of 6: the layer table (sort, filter) and the cost charts.
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
