import { promises as fs } from 'node:fs';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { SampleError } from '../../../lib/errors';
import { ModelFolder } from '../../../lib/models/model-folder';
import {
  centerCropOffset,
  loadImageProcessor,
  parseImageProcessor,
  preprocessImage,
  pyRound,
  referenceFor,
  shortestEdgeSize,
  type ImageProcessorSpec,
} from '../../../lib/models/preprocess';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import type { PixelTensor } from '../../../lib/models/types';
import { tempDir } from '../../helpers/paths';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

function solid(width: number, height: number, rgb: [number, number, number], alpha?: number): Promise<Buffer> {
  const channels = alpha === undefined ? 3 : 4;
  const raw = Buffer.alloc(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    raw.set(rgb, i * channels);
    if (alpha !== undefined) raw[i * channels + 3] = alpha;
  }
  return sharp(raw, { raw: { width, height, channels } }).png().toBuffer();
}

/** An image whose red channel equals the column index (0..width-1), so crops can be located exactly. */
function columnRamp(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw[(y * width + x) * 3] = x;
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const at = (p: PixelTensor, c: number, y: number, x: number): number => p.data[c * p.dims[1] * p.dims[2] + y * p.dims[2] + x]!;
const normalised = (v: number, c: number, mean = CLIP_MEAN, std = CLIP_STD): number => (v / 255 - mean[c]!) / std[c]!;

/** Rewrites a PNG's IHDR size (and CRC) without touching its pixel data: a cheap decompression-bomb header. */
function withDeclaredSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

describe('preprocess', () => {
  const root = tempDir('recaption-pre-');
  let clip: ImageProcessorSpec;
  let vit: ImageProcessorSpec;

  beforeAll(async () => {
    const dirs = await generateTinyModels(root);
    clip = await loadImageProcessor(await ModelFolder.open(dirs.clipDir));
    vit = await loadImageProcessor(await ModelFolder.open(dirs.captionerDir));
  });
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('reads the CLIP and ViT processor configs', () => {
    expect(clip).toEqual({
      reference: 'openai_clip',
      filter: 'bicubic',
      resize: { mode: 'shortest_edge', size: 224 },
      crop: { height: 224, width: 224 },
      rescale: 1 / 255,
      normalize: { mean: CLIP_MEAN, std: CLIP_STD },
    });
    expect(vit).toEqual({
      reference: 'transformers',
      filter: 'bilinear',
      resize: { mode: 'exact', height: 224, width: 224 },
      rescale: 1 / 255,
      normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    });
  });

  it('follows OpenAI CLIP for CLIP processors and transformers for the others', () => {
    expect(referenceFor({ image_processor_type: 'CLIPImageProcessor' })).toBe('openai_clip');
    expect(referenceFor({ feature_extractor_type: 'CLIPFeatureExtractor' })).toBe('openai_clip');
    expect(referenceFor({ image_processor_type: 'BlipImageProcessor' })).toBe('transformers');
    expect(referenceFor({ image_processor_type: 'SiglipImageProcessor' })).toBe('transformers');
    expect(referenceFor({})).toBe('transformers');
    // Crop offsets: torchvision rounds half to even and pads floor((crop - size) / 2) in front; transformers floors.
    expect([227, 229, 201].map((s) => centerCropOffset(s, 224, 'openai_clip'))).toEqual([2, 2, -11]);
    expect([227, 229, 201].map((s) => centerCropOffset(s, 224, 'transformers'))).toEqual([1, 2, -12]);
  });

  it('produces CHW float32 at the model size, normalised with the processor mean/std', async () => {
    const image = await solid(320, 200, [255, 0, 128]);
    const p = await preprocessImage(image, clip);
    expect(p.dims).toEqual([3, 224, 224]);
    expect(p.data).toBeInstanceOf(Float32Array);
    expect(p.data.length).toBe(3 * 224 * 224);
    for (const [y, x] of [[0, 0], [111, 111], [223, 223], [5, 200]] as const) {
      expect(at(p, 0, y, x)).toBeCloseTo(normalised(255, 0), 4);
      expect(at(p, 1, y, x)).toBeCloseTo(normalised(0, 1), 4);
      expect(at(p, 2, y, x)).toBeCloseTo(normalised(128, 2), 4);
    }
    const v = await preprocessImage(await solid(50, 300, [0, 255, 51]), vit);
    expect(v.dims).toEqual([3, 224, 224]);
    expect(at(v, 0, 100, 100)).toBeCloseTo(-1, 5);
    expect(at(v, 1, 100, 100)).toBeCloseTo(1, 5);
    expect(at(v, 2, 100, 100)).toBeCloseTo(51 / 127.5 - 1, 5);
  });

  it('rounds center-crop offsets like Python round (half to even)', async () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, 2.4, 2.6].map(pyRound)).toEqual([0, 2, 2, 4, 0, 2, 3]);
    expect([225, 226, 227, 229, 231].map((s) => centerCropOffset(s, 224))).toEqual([0, 1, 2, 2, 4]);
    expect(shortestEdgeSize(400, 300, 224)).toEqual({ width: 298, height: 224 });
    expect(shortestEdgeSize(300, 1000, 224)).toEqual({ width: 224, height: 746 });
    // End to end: height is already 224, so only the crop moves pixels; column x has red value x.
    for (const [width, left] of [
      [225, 0],
      [227, 2],
      [229, 2],
      [231, 4],
    ] as const) {
      const p = await preprocessImage(await columnRamp(width, 224), clip);
      expect(at(p, 0, 100, 0)).toBeCloseTo(normalised(left, 0), 4);
      expect(at(p, 0, 100, 223)).toBeCloseTo(normalised(left + 223, 0), 4);
    }
  });

  it('zero-pads when the image is smaller than the crop', async () => {
    const spec: ImageProcessorSpec = { ...clip, resize: undefined };
    const p = await preprocessImage(await solid(200, 224, [255, 255, 255]), spec);
    expect(p.dims).toEqual([3, 224, 224]);
    expect(at(p, 0, 10, 5)).toBeCloseTo(normalised(0, 0), 4); // offset round(-12) = -12: 12 padded columns
    expect(at(p, 0, 10, 12)).toBeCloseTo(normalised(255, 0), 4);
  });

  it('drops alpha without compositing and turns greyscale into RGB', async () => {
    const transparent = await preprocessImage(await solid(240, 240, [200, 100, 50], 0), vit);
    expect(at(transparent, 0, 50, 50)).toBeCloseTo(200 / 127.5 - 1, 4);
    expect(at(transparent, 1, 50, 50)).toBeCloseTo(100 / 127.5 - 1, 4);
    const grey = await sharp(Buffer.alloc(230 * 230, 90), { raw: { width: 230, height: 230, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await preprocessImage(grey, vit);
    expect(g.dims).toEqual([3, 224, 224]);
    for (let c = 0; c < 3; c++) expect(at(g, c, 7, 7)).toBeCloseTo(90 / 127.5 - 1, 4);
  });

  it('applies EXIF orientation for transformers processors (load_image does), not for CLIP (OpenAI\'s transform does not)', async () => {
    // Left half red, right half blue, tagged "rotate 90° CW": displayed, the red half is on top.
    const raw = Buffer.alloc(300 * 200 * 3);
    for (let y = 0; y < 200; y++) for (let x = 0; x < 300; x++) raw.set(x < 150 ? [255, 0, 0] : [0, 0, 255], (y * 300 + x) * 3);
    const jpeg = await sharp(raw, { raw: { width: 300, height: 200, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    for (const resampler of ['sharp', 'pillow'] as const) {
      const c = await preprocessImage(jpeg, clip, { resampler });
      expect(at(c, 0, 112, 10)).toBeGreaterThan(1.5); // red on the left, as stored
      expect(at(c, 2, 112, 213)).toBeGreaterThan(1.5); // blue on the right
      const v = await preprocessImage(jpeg, vit, { resampler });
      expect(at(v, 0, 10, 112)).toBeGreaterThan(0.8); // red on top, as displayed
      expect(at(v, 2, 213, 112)).toBeGreaterThan(0.8); // blue at the bottom
    }
  });

  it('reports bad images with the SampleError reasons the decision parquet records', async () => {
    const reason = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof SampleError ? e.reason : `not a SampleError: ${String(e)}`),
      );
    expect(await reason(preprocessImage(Buffer.alloc(0), clip))).toBe('empty_image');
    expect(await reason(preprocessImage(Buffer.from('this is not an image at all'), clip))).toBe('decode_error');
    const jpeg = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 10, g: 200, b: 30 } } })
      .jpeg()
      .toBuffer();
    expect(await reason(preprocessImage(jpeg.subarray(0, Math.floor(jpeg.length / 2)), clip))).toBe('decode_error');
    const png = await solid(64, 64, [1, 2, 3]);
    expect(await reason(preprocessImage(png, clip, { maxPixels: 64 * 63 }))).toBe('too_many_pixels');
    // A 40000 x 40000 header (1.6 G pixels) is refused by the default limit before anything is decoded.
    expect(await reason(preprocessImage(withDeclaredSize(png, 40_000, 40_000), clip))).toBe('too_many_pixels');
    expect(await reason(preprocessImage(png, clip))).toBe('ok');
  });

  it('refuses processor configs it cannot reproduce', () => {
    expect(() => parseImageProcessor({ resample: 7, size: { height: 8, width: 8 }, image_mean: [0, 0, 0], image_std: [1, 1, 1] }, 'x/preprocessor_config.json')).toThrow(
      /preprocessor_config.json: resample 7/,
    );
    expect(parseImageProcessor({ resample: 4, size: 8, image_mean: 0.5, image_std: 0.5 }, 'z').filter).toBe('box');
    expect(() => parseImageProcessor({ do_normalize: true, size: 224 }, 'y/preprocessor_config.json')).toThrow(/image_mean/);
  });
});
