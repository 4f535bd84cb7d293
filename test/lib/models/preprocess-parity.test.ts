/**
 * Preprocessing parity with the Pillow-based references, on the fixtures bench/make_preprocess_fixtures.py wrote
 * (images of several sizes, aspect ratios and modes, and each reference processor's uint8 output right before
 * the float conversion). For every fixture x processor, our tensor is compared with the reference tensor rebuilt
 * from that uint8 with the reference's own float32 arithmetic (normalise.<processor>.npy, written by NumPy).
 *
 * Tolerances, in uint8 levels (1 level = 1 / (255 * std) in tensor units, 0.0150 for CLIP's green channel):
 *   resampler 'pillow': exact — the same uint8, the same float32 bits.
 *   resampler 'sharp' (default): TOLERANCE below, set a little above what was measured (sharp 0.35.5 / libvips
 *   8.18.7 against Pillow 13.0; the README's "Preprocessing parity" table has the figures).
 * Set PREPROCESS_PARITY_REPORT=1 to print the measured table.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { normaliseTable, parseImageProcessor, preprocessImage, referenceFor, type ImageProcessorSpec } from '../../../lib/models/preprocess';
import type { PixelTensor } from '../../../lib/models/types';
import { REPO_ROOT } from '../../helpers/paths';

const DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'preprocess');

interface Manifest {
  script_version: number;
  pillow: string;
  processors: Record<string, { reference: string; config: Record<string, unknown>; normalise_table: string }>;
  fixtures: { file: string; note: string; pil_mode: string; outputs: Record<string, { file: string; shape: [number, number, number]; sha256: string }> }[];
}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Manifest;

/**
 * Sharp-path tolerance per processor, in levels: max |Δ| over a tensor, and mean |Δ| over a tensor's values; the
 * measured worst fixture in the comments (CLIP's 17 levels are 0.24 in tensor units).
 */
const TOLERANCE: Record<string, { max: number; mean: number }> = {
  openai_clip: { max: 20, mean: 0.3 }, // measured 17 (exif6: 2-pixel stripes shrunk by 1.07), mean 0.15 (large)
  blip: { max: 8, mean: 0.1 }, // measured 6 (rgba), 0.08 (photo)
  bit: { max: 12, mean: 0.15 }, // measured 9 (odd), 0.13 (photo)
  vit: { max: 14, mean: 0.3 }, // measured 11 (palette), 0.22 (large)
};

// Bound once: global lookups inside hot loops are ~100x slower in jest's vm context.
const { abs, max, round } = Math;

/** A little-endian float32 .npy (NumPy's format 1.0): header length at byte 8, data after the header. */
function readNpyFloat32(file: string): Float32Array {
  const buf = readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY' || buf[6] !== 1) throw new Error(`${file}: not a version 1 .npy`);
  const headerEnd = 10 + buf.readUInt16LE(8);
  if (!/'descr': '<f4'/.test(buf.toString('latin1', 10, headerEnd))) throw new Error(`${file}: not little-endian float32`);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + headerEnd, buf.byteOffset + buf.length));
}

/** The reference uint8 HWC image: a lossless PNG, checked against the SHA-256 the generator recorded. */
async function readReference(out: { file: string; shape: [number, number, number]; sha256: string }): Promise<Uint8Array> {
  const { data, info } = await sharp(path.join(DIR, out.file)).raw().toBuffer({ resolveWithObject: true });
  expect([info.height, info.width, info.channels]).toEqual(out.shape);
  expect(createHash('sha256').update(data).digest('hex')).toBe(out.sha256);
  return data;
}

interface Diff {
  maxLevels: number;
  meanLevels: number;
  maxAbs: number;
  /** share of values that differ at all */
  differing: number;
}

/** Our CHW tensor against the reference rebuilt from uint8 HWC with the reference's table. */
function compare(ours: PixelTensor, ref: Uint8Array, table: Float32Array): Diff {
  const [, h, w] = ours.dims;
  let maxLevels = 0;
  let sumLevels = 0;
  let maxAbs = 0;
  let differing = 0;
  for (let c = 0; c < 3; c++) {
    const step = (table[c * 256 + 255]! - table[c * 256]!) / 255; // one uint8 level in tensor units
    for (let i = 0; i < h * w; i++) {
      const d = abs(ours.data[c * h * w + i]! - table[c * 256 + ref[i * 3 + c]!]!);
      if (d === 0) continue;
      differing++;
      maxAbs = max(maxAbs, d);
      const levels = round(d / step);
      maxLevels = max(maxLevels, levels);
      sumLevels += levels;
    }
  }
  const n = 3 * h * w;
  return { maxLevels, meanLevels: sumLevels / n, maxAbs, differing: differing / n };
}

const report: string[] = [];

describe('preprocessing parity with the Pillow references', () => {
  afterAll(() => {
    if (process.env.PREPROCESS_PARITY_REPORT) process.stdout.write(`\n${report.join('\n')}\n`);
  });

  it('has fixtures written by the current generator', () => {
    expect(manifest.script_version).toBe(1);
    expect(manifest.fixtures.length).toBeGreaterThanOrEqual(10);
  });

  describe.each(Object.entries(manifest.processors))('%s', (name, proc) => {
    const spec: ImageProcessorSpec = parseImageProcessor(proc.config as never, `${name} preprocessor_config.json`);
    const table = readNpyFloat32(path.join(DIR, proc.normalise_table));

    it('reads the reference from the processor class and reproduces its float32 arithmetic bit for bit', () => {
      expect(referenceFor(proc.config as never)).toBe(proc.reference);
      expect(spec.reference).toBe(proc.reference);
      expect(table.length).toBe(3 * 256);
      expect(Array.from(normaliseTable(spec))).toEqual(Array.from(table));
    });

    it.each(manifest.fixtures.map((f) => [f.file, f] as const))('%s', async (_file, fixture) => {
      const out = fixture.outputs[name]!;
      const ref = await readReference(out);
      const image = readFileSync(path.join(DIR, fixture.file));
      const [h, w] = out.shape;

      const pillow = await preprocessImage(image, spec, { resampler: 'pillow' });
      expect(pillow.dims).toEqual([3, h, w]);
      const p = compare(pillow, ref, table);

      const viaSharp = await preprocessImage(image, spec);
      expect(viaSharp.dims).toEqual([3, h, w]);
      const s = compare(viaSharp, ref, table);
      report.push(
        `${name.padEnd(12)} ${fixture.file.padEnd(22)} pillow max ${p.maxLevels} | sharp max ${s.maxLevels} levels (${s.maxAbs.toFixed(4)}), mean ${s.meanLevels.toFixed(3)}, differing ${(100 * s.differing).toFixed(1)}%`,
      );

      expect(p).toEqual({ maxLevels: 0, meanLevels: 0, maxAbs: 0, differing: 0 });
      expect(s.maxLevels).toBeLessThanOrEqual(TOLERANCE[name]!.max);
      expect(s.meanLevels).toBeLessThanOrEqual(TOLERANCE[name]!.mean);
    });
  });
});
