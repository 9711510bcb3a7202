/**
 * A bar chart as a hand-written SVG: one panel per group, each with its own scale (a 100 MB model
 * would flatten a 1 MB one on a shared axis); bar = median, whisker = min to max, and a dashed
 * line at the first bar's median, the baseline the others are compared with.
 */
import type { Summary } from './stats';

export interface ChartGroup {
  readonly label: string;
  readonly bars: readonly { readonly label: string; readonly summary: Summary }[];
}

const COLORS = ['#9aa0a6', '#4e79a7', '#f28e2b', '#59a14f', '#e15759'];
const WIDTH = 760;
const MARGIN = { left: 20, right: 20, top: 60 };
const PANEL_GAP = 20;
const AXIS_WIDTH = 50;
const PLOT_HEIGHT = 280;

export function coldStartChart(groups: readonly ChartGroup[], options: { title: string; unit: string; baseline: string }): string {
  const series = groups[0]?.bars.map((b) => b.label) ?? [];
  const bottom = MARGIN.top + PLOT_HEIGHT;
  const height = bottom + 50 + series.length * 20;
  const panelWidth = (WIDTH - MARGIN.left - MARGIN.right - PANEL_GAP * (groups.length - 1)) / Math.max(groups.length, 1);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
    `<text x="${WIDTH / 2}" y="42" text-anchor="middle" fill="#555">${escapeXml(
      `${options.unit}; bar: median, whisker: min to max, dashed: ${options.baseline}; a scale per panel`,
    )}</text>`,
  ];
  groups.forEach((group, g) => {
    const left = MARGIN.left + g * (panelWidth + PANEL_GAP) + AXIS_WIDTH;
    const right = MARGIN.left + g * (panelWidth + PANEL_GAP) + panelWidth;
    const top = niceCeiling(Math.max(...group.bars.map((b) => b.summary.max)));
    const y = (v: number) => bottom - (v / top) * PLOT_HEIGHT;
    for (let i = 0; i <= 5; i++) {
      const value = (top / 5) * i;
      parts.push(
        `<line x1="${left}" x2="${f(right)}" y1="${f(y(value))}" y2="${f(y(value))}" stroke="${i === 0 ? '#333' : '#e5e5e5'}"/>`,
        `<text x="${left - 6}" y="${f(y(value) + 4)}" text-anchor="end">${label(value)}</text>`,
      );
    }
    const slot = (right - left) / group.bars.length;
    const barWidth = Math.min(64, slot * 0.75);
    group.bars.forEach((bar, b) => {
      const mid = left + slot * (b + 0.5);
      const { min, p50, max } = bar.summary;
      parts.push(
        `<rect x="${f(mid - barWidth / 2)}" y="${f(y(p50))}" width="${f(barWidth)}" height="${f(bottom - y(p50))}" fill="${COLORS[b % COLORS.length]}"><title>${escapeXml(
          `${group.label}, ${bar.label}: median ${label(p50)}, min ${label(min)}, max ${label(max)}`,
        )}</title></rect>`,
        `<line x1="${f(mid)}" x2="${f(mid)}" y1="${f(y(max))}" y2="${f(y(min))}" stroke="#222"/>`,
        `<line x1="${f(mid - 6)}" x2="${f(mid + 6)}" y1="${f(y(max))}" y2="${f(y(max))}" stroke="#222"/>`,
        `<line x1="${f(mid - 6)}" x2="${f(mid + 6)}" y1="${f(y(min))}" y2="${f(y(min))}" stroke="#222"/>`,
        `<text x="${f(mid)}" y="${f(y(max) - 6)}" text-anchor="middle" font-size="11">${label(p50)}</text>`,
      );
    });
    const baseline = group.bars[0]?.summary.p50;
    if (baseline !== undefined) {
      parts.push(`<line x1="${left}" x2="${f(right)}" y1="${f(y(baseline))}" y2="${f(y(baseline))}" stroke="#555" stroke-dasharray="4 3"/>`);
    }
    parts.push(`<text x="${f((left + right) / 2)}" y="${bottom + 22}" text-anchor="middle" font-weight="bold">${escapeXml(group.label)} model</text>`);
  });
  series.forEach((name, i) => {
    const ly = bottom + 50 + i * 20;
    parts.push(
      `<rect x="${MARGIN.left + AXIS_WIDTH}" y="${ly - 10}" width="14" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${MARGIN.left + AXIS_WIDTH + 22}" y="${ly}">${escapeXml(name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** A round number at or above `value`, so that a fifth of it makes round tick labels. */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * power >= value) ?? 10) * power;
}

function label(v: number): string {
  return v === 0 || v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

function f(v: number): string {
  return v.toFixed(1);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
