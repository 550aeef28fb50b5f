// convcalc report, part 6 of 6: wiring the controls and drawing everything, timed.
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
