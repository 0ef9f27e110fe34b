// Bar charts drawn as SVG by hand. A chart library would be the largest file of the app (tens
// of KB, vendored with its licence and kept up to date) for a few bars per pile; these are
// a few dozen lines, follow the page's styles and fonts, and are read by screen readers from
// their <title>, <desc> and aria-label. Values are printed as text next to their bars.
import { svg } from "./dom.js";

const VALUE_W = 90; // the figure after each bar
const BAR_H = 16;
const BAR_GAP = 4;
const ROW_GAP = 14;
const LEGEND_H = 28;

/**
 * Horizontal bars, one group per row, one bar per series. Each series has its own scale (kWh
 * and yuan are not one unit): its longest bar is the widest.
 *   rows: [{label, values: [number, …]}]; series: [{name, cls, format(value) -> text}]
 */
export function barChart({ title, description, rows, series, testId, width = 640 }) {
  // Drawn at the width it is shown at, so that its text is the page's size on a phone as on a
  // desktop (a scaled drawing would shrink it to a third on a phone).
  const labelW = Math.min(110, Math.round(width * 0.22)); // the pile's name
  const legendStep = Math.min(180, Math.floor((width - labelW) / series.length));
  const rowH = series.length * (BAR_H + BAR_GAP) - BAR_GAP + ROW_GAP;
  const height = LEGEND_H + rows.length * rowH;
  const span = Math.max(40, width - labelW - VALUE_W);
  const maxima = series.map((_, i) => Math.max(0, ...rows.map((row) => row.values[i])));
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "chart",
    role: "img",
    "aria-label": `${title}. ${description}`,
    "data-test": testId,
    preserveAspectRatio: "xMinYMin meet",
  }, svg("title", {}, title), svg("desc", {}, description));

  series.forEach((s, i) => {
    const x = labelW + i * legendStep;
    chart.append(
      svg("rect", { x, y: 6, width: 12, height: 12, class: s.cls }),
      svg("text", { x: x + 18, y: 17, class: "legend" }, s.name));
  });

  rows.forEach((row, r) => {
    const top = LEGEND_H + r * rowH;
    const groupH = rowH - ROW_GAP;
    chart.append(svg("text", { x: 0, y: top + groupH / 2 + 5, class: "label" }, row.label));
    series.forEach((s, i) => {
      const value = row.values[i];
      const barW = maxima[i] > 0 ? (value / maxima[i]) * span : 0;
      const y = top + i * (BAR_H + BAR_GAP);
      chart.append(
        svg("rect", {
          x: labelW, y, width: Math.max(barW, value > 0 ? 1 : 0), height: BAR_H, class: s.cls,
          "data-value": value,
        }),
        svg("text", { x: labelW + barW + 6, y: y + BAR_H - 3, class: "value" }, s.format(value)));
    });
  });
  return chart;
}
