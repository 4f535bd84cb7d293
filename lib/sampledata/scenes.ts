/**
 * Synthetic scenes: 1-3 simple shapes in named colours on a coloured background, sometimes with a word.
 * Simple enough to render fast with sharp (SVG via librsvg) and to describe exactly, so tests and the
 * demo have a ground-truth description to compare captions against.
 */
import type { Rng } from './random';

/** Named colours with the fill used to draw them (kept far apart so the names stay true). */
export const COLOURS = {
  red: '#d62828',
  green: '#2a9d3f',
  blue: '#1d4ed8',
  yellow: '#facc15',
  orange: '#f97316',
  purple: '#7e22ce',
  pink: '#f472b6',
  white: '#ffffff',
  black: '#111111',
  gray: '#8c8c8c',
  brown: '#7c4a1e',
} as const;
export type ColourName = keyof typeof COLOURS;

export const SHAPE_KINDS = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

export const WORDS = ['sale', 'hello', 'open', 'stop', 'news', 'cat', 'love', 'free'] as const;

export interface Shape {
  kind: ShapeKind;
  colour: ColourName;
  /** Centre and radius in pixels of the rendered image. */
  cx: number;
  cy: number;
  r: number;
}

export interface Scene {
  width: number;
  height: number;
  background: ColourName;
  shapes: Shape[];
  word: string | null;
  /** Colour of the word (distinct from the background). */
  wordColour: ColourName | null;
}

const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

/** A random scene of the given pixel size. */
export function randomScene(rng: Rng, width: number, height: number): Scene {
  const background = rng.pick(COLOUR_NAMES);
  const n = rng.weighted([
    [1, 4],
    [2, 4],
    [3, 2],
  ] as const);
  const shapes: Shape[] = [];
  const minSide = Math.min(width, height);
  // Lay shapes out left to right in equal columns so they never hide each other.
  for (let i = 0; i < n; i++) {
    const colW = width / n;
    const r = Math.max(8, Math.round(Math.min(colW, height) * (0.25 + rng.next() * 0.15)));
    shapes.push({
      kind: rng.pick(SHAPE_KINDS),
      colour: rng.pick(COLOUR_NAMES.filter((c) => c !== background)),
      cx: Math.round(colW * i + colW / 2),
      cy: Math.round(height * (0.35 + rng.next() * 0.2)),
      r: Math.min(r, Math.round(minSide * 0.4)),
    });
  }
  const hasWord = rng.next() < 0.3;
  return {
    width,
    height,
    background,
    shapes,
    word: hasWord ? rng.pick(WORDS) : null,
    wordColour: hasWord ? rng.pick(COLOUR_NAMES.filter((c) => c !== background)) : null,
  };
}

function polygon(cx: number, cy: number, r: number, points: number, rotation: number, inner?: number): string {
  const pts: string[] = [];
  const total = inner === undefined ? points : points * 2;
  for (let i = 0; i < total; i++) {
    const rad = inner !== undefined && i % 2 === 1 ? r * inner : r;
    const a = rotation + (i * 2 * Math.PI) / total;
    pts.push(`${(cx + rad * Math.cos(a)).toFixed(1)},${(cy + rad * Math.sin(a)).toFixed(1)}`);
  }
  return pts.join(' ');
}

function shapeSvg(s: Shape): string {
  const fill = COLOURS[s.colour];
  const up = -Math.PI / 2;
  switch (s.kind) {
    case 'circle':
      return `<circle cx="${s.cx}" cy="${s.cy}" r="${s.r}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${s.cx - s.r}" y="${s.cy - s.r}" width="${2 * s.r}" height="${2 * s.r}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${polygon(s.cx, s.cy, s.r, 3, up)}" fill="${fill}"/>`;
    case 'star':
      return `<polygon points="${polygon(s.cx, s.cy, s.r, 5, up, 0.45)}" fill="${fill}"/>`;
    case 'diamond':
      return `<polygon points="${polygon(s.cx, s.cy, s.r, 4, up)}" fill="${fill}"/>`;
    case 'hexagon':
      return `<polygon points="${polygon(s.cx, s.cy, s.r, 6, 0)}" fill="${fill}"/>`;
  }
}

export function sceneSvg(scene: Scene): string {
  const { width, height } = scene;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="${COLOURS[scene.background]}"/>`,
    ...scene.shapes.map(shapeSvg),
  ];
  if (scene.word && scene.wordColour) {
    const size = Math.max(12, Math.round(Math.min(height * 0.16, (width / scene.word.length) * 1.2)));
    parts.push(
      `<text x="${Math.round(width / 2)}" y="${Math.round(height * 0.92)}" font-family="DejaVu Sans, sans-serif" font-size="${size}" font-weight="bold" text-anchor="middle" fill="${COLOURS[scene.wordColour]}">${scene.word}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

function listPhrase(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

const COUNT_WORDS = ['', 'one', 'two', 'three', 'four', 'five'];

/**
 * Canonical, exact description, left to right, identical shapes counted:
 * `two red circles and a blue square on a yellow background with the word "sale"`.
 */
export function describeScene(scene: Scene): string {
  const groups = new Map<string, { colour: ColourName; kind: ShapeKind; n: number }>();
  for (const s of scene.shapes) {
    const k = `${s.colour} ${s.kind}`;
    const g = groups.get(k);
    if (g) g.n++;
    else groups.set(k, { colour: s.colour, kind: s.kind, n: 1 });
  }
  const shapes = listPhrase(
    [...groups.values()].map((g) => (g.n === 1 ? `${article(g.colour)} ${g.colour} ${g.kind}` : `${COUNT_WORDS[g.n] ?? g.n} ${g.colour} ${g.kind}s`)),
  );
  const word = scene.word ? ` with the word "${scene.word}"` : '';
  return `${shapes} on ${article(scene.background)} ${scene.background} background${word}`;
}
