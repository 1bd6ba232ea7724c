/**
 * A 3x5 pixel bitmap font (digits, upper-case letters, a few signs) for labels on PNG pictures
 * without a font library. Each glyph: 5 rows of 3 bits, most significant bit on the left.
 */
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [3, 4, 4, 4, 3],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [3, 4, 5, 5, 3],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4],
  Q: [2, 5, 5, 6, 3],
  R: [6, 5, 6, 5, 5],
  S: [3, 4, 2, 1, 6],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
  '.': [0, 0, 0, 0, 2],
  ',': [0, 0, 0, 2, 4],
  ':': [0, 2, 0, 2, 0],
  '-': [0, 0, 7, 0, 0],
  '+': [0, 2, 7, 2, 0],
  '/': [1, 1, 2, 4, 4],
  '=': [0, 7, 0, 7, 0],
  '%': [5, 1, 2, 4, 5],
  '(': [1, 2, 2, 2, 1],
  ')': [4, 2, 2, 2, 4],
  _: [0, 0, 0, 0, 7],
  ' ': [0, 0, 0, 0, 0],
  '#': [5, 7, 5, 7, 5],
  '*': [0, 5, 2, 5, 0],
};

export interface RgbImage {
  width: number;
  height: number;
  /** RGBA, row-major. */
  data: Uint8Array;
}

export type Rgb = readonly [number, number, number];

export function setPixel(img: RgbImage, x: number, y: number, c: Rgb): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = 4 * (Math.floor(y) * img.width + Math.floor(x));
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
  img.data[o + 3] = 255;
}

/** Draws text (upper-cased) with its top-left corner at (x, y); `scale` pixels per font pixel. */
export function drawText(img: RgbImage, text: string, x: number, y: number, c: Rgb, scale = 2): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const g = GLYPHS[ch] ?? GLYPHS['*']!;
    for (let r = 0; r < 5; r++) {
      for (let b = 0; b < 3; b++) {
        if (!((g[r]! >> (2 - b)) & 1)) continue;
        for (let sy = 0; sy < scale; sy++) for (let sx = 0; sx < scale; sx++) setPixel(img, cx + b * scale + sx, y + r * scale + sy, c);
      }
    }
    cx += 4 * scale;
  }
}

export function textWidth(text: string, scale = 2): number {
  return text.length * 4 * scale;
}
