// Small SVG line charts: no library, no canvas, readable by screen readers through their
// legend (the latest value of each series is text).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 400;
const HEIGHT = 140;
const PAD = {left: 34, right: 8, top: 8, bottom: 18};

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

const format = (value) => (Number.isInteger(value) ? String(value) : value.toFixed(2));

/**
 * Draw `series` ([{label, points: [[x, y], …]}], every series on the same x values) into the
 * <figure> `figure`, replacing what was there. `xLabel` names the x axis.
 */
export function drawChart(figure, {title, series, xLabel}) {
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const top = Math.max(1, ...ys);
  const sx = (x) => PAD.left + (x1 === x0 ? 0 : ((x - x0) / (x1 - x0)) * (WIDTH - PAD.left - PAD.right));
  const sy = (y) => HEIGHT - PAD.bottom - (y / top) * (HEIGHT - PAD.top - PAD.bottom);

  const samples = Math.max(0, ...series.map((s) => s.points.length));
  const latest = series.map((s) => `${s.label} ${s.points.length ? format(s.points.at(-1)[1]) : "–"}`).join(", ");
  const chart = svg("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": `${title}: ${latest}`});
  chart.append(svg("line", {class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: sy(0), y2: sy(0)}));
  chart.append(svg("line", {class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: sy(0)}));
  for (const [y, anchor] of [[top, "top"], [0, "bottom"]]) {
    const label = svg("text", {class: "tick", x: PAD.left - 4, y: sy(y) + (anchor === "top" ? 8 : 0), "text-anchor": "end"});
    label.textContent = format(y);
    chart.append(label);
  }
  const axis = svg("text", {class: "tick", x: WIDTH - PAD.right, y: HEIGHT - 4, "text-anchor": "end"});
  axis.textContent = xLabel;
  chart.append(axis);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const points = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", {class: `line c${i}`, points}));
  });

  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, i) => {
    const item = document.createElement("li");
    item.className = `c${i}`;
    item.dataset.series = s.label;
    item.textContent = `${s.label}: ${s.points.length ? format(s.points.at(-1)[1]) : "–"}`;
    legend.append(item);
  });
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.dataset.samples = String(samples);
  figure.replaceChildren(caption, chart, legend);
}
