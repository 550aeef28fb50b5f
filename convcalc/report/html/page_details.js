// convcalc report, part 3 of 6: one layer's full row (click or hover), and selecting a layer.
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
