/** Line plots of training curves as PNG (no plotting library: a few hundred pixels of lines). */
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../io/atomic.ts';
import { drawText, setPixel, textWidth, type Rgb, type RgbImage } from './font.ts';

export interface Series {
  label: string;
  x: number[];
  y: number[];
  color: Rgb;
}

export interface Panel {
  title: string;
  series: Series[];
  /** Fixed y range; default from the data. */
  yRange?: [number, number];
}

const W = 420,
  H = 260,
  M = { l: 56, r: 12, t: 26, b: 30 };

function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  for (let i = 0; i <= n; i++) setPixel(img, Math.round(x0 + ((x1 - x0) * i) / n), Math.round(y0 + ((y1 - y0) * i) / n), c);
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 1e4)) return v.toExponential(0);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function drawPanel(img: RgbImage, ox: number, p: Panel): void {
  const pts = p.series.flatMap((s) => s.x.map((x, i) => [x, s.y[i]!] as const)).filter(([, y]) => Number.isFinite(y));
  const xs = pts.map(([x]) => x);
  let [y0, y1] = p.yRange ?? [Math.min(...pts.map(([, y]) => y)), Math.max(...pts.map(([, y]) => y))];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs, x0 + 1e-9) : 1;
  const px = (x: number) => ox + M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const py = (y: number) => M.t + (1 - (y - y0) / (y1 - y0)) * (H - M.t - M.b);
  const axis: Rgb = [90, 90, 90];
  drawLine(img, ox + M.l, M.t, ox + M.l, H - M.b, axis);
  drawLine(img, ox + M.l, H - M.b, ox + W - M.r, H - M.b, axis);
  for (let k = 0; k <= 4; k++) {
    const y = y0 + ((y1 - y0) * k) / 4;
    drawLine(img, ox + M.l - 3, py(y), ox + M.l, py(y), axis);
    const label = fmt(y);
    drawText(img, label, ox + M.l - 6 - textWidth(label, 1), py(y) - 2, axis, 1);
  }
  drawText(img, fmt(x0), ox + M.l, H - M.b + 6, axis, 1);
  drawText(img, fmt(x1), ox + W - M.r - textWidth(fmt(x1), 1), H - M.b + 6, axis, 1);
  drawText(img, p.title, ox + M.l, 6, [20, 20, 20], 2);
  let ly = M.t + 4;
  for (const s of p.series) {
    for (let i = 1; i < s.x.length; i++) {
      if (!Number.isFinite(s.y[i - 1]!) || !Number.isFinite(s.y[i]!)) continue;
      drawLine(img, px(s.x[i - 1]!), py(s.y[i - 1]!), px(s.x[i]!), py(s.y[i]!), s.color);
    }
    if (s.x.length === 1 && Number.isFinite(s.y[0]!)) for (let d = -2; d <= 2; d++) setPixel(img, px(s.x[0]!) + d, py(s.y[0]!), s.color);
    drawText(img, s.label, ox + W - M.r - textWidth(s.label, 1) - 4, ly, s.color, 1);
    ly += 9;
  }
}

/** Writes panels side by side into one PNG, atomically. */
export function writePlotPng(file: string, panels: Panel[]): void {
  const png = new PNG({ width: W * panels.length, height: H });
  png.data.fill(255);
  const img: RgbImage = { width: png.width, height: png.height, data: png.data };
  panels.forEach((p, i) => {
    drawPanel(img, i * W, p);
  });
  writeFileAtomic(file, PNG.sync.write(png));
}
