// convcalc report, part 5 of 6: receptive fields (growth chart, regions on the input, ERF), lint, run.
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
