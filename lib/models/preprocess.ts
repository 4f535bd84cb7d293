/**
 * Image decoding (sharp) and model preprocessing, following a folder's preprocessor_config.json the way the
 * PIL-based references (OpenAI CLIP / open_clip, HF image processors) do it:
 *   decode -> RGB (alpha dropped, not composited; embedded ICC profile and EXIF orientation ignored, as PIL does)
 *   -> resize with Pillow's exact resampling (resample.ts; CLIP: shortest side to N, long side int(N*long/short);
 *      ViT/SigLIP: exact size)
 *   -> center crop with offsets round((H-h)/2) (Python round: half to even), zero padding if smaller
 *   -> rescale (1/255) -> normalise (mean/std) -> CHW float32.
 */
import sharp, { type Metadata, type SharpOptions } from 'sharp';
import { z } from 'zod';
import { InputError, SampleError } from '../errors';
import type { ModelFolder } from './model-folder';
import { PIL_FILTERS, resampleLikePil, type PilFilter } from './resample';
import type { PixelTensor } from './types';

/** PIL's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_PIXELS = 2 * 89_478_485;

export interface ImageProcessorSpec {
  resize?: { mode: 'shortest_edge'; size: number } | { mode: 'exact'; height: number; width: number };
  /** Pillow resampling filter (preprocessor_config.json `resample`) */
  filter: PilFilter;
  crop?: { height: number; width: number };
  /** multiply uint8 values by this (1/255), or leave them 0..255 when undefined */
  rescale?: number;
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
}

const sizeSchema = z.union([
  z.number().int().positive(),
  z.object({ shortest_edge: z.number().int().positive(), longest_edge: z.number().int().positive().optional() }),
  z.object({ height: z.number().int().positive(), width: z.number().int().positive() }),
]);
const triple = z.union([z.number(), z.array(z.number()).length(3)]);

export const preprocessorConfigSchema = z.object({
  image_processor_type: z.string().optional(),
  feature_extractor_type: z.string().optional(),
  do_resize: z.boolean().optional(),
  size: sizeSchema.optional(),
  resample: z.number().int().optional(),
  do_center_crop: z.boolean().optional(),
  crop_size: sizeSchema.optional(),
  do_rescale: z.boolean().optional(),
  rescale_factor: z.number().positive().optional(),
  do_normalize: z.boolean().optional(),
  image_mean: triple.optional(),
  image_std: triple.optional(),
  do_convert_rgb: z.boolean().optional(),
});
export type PreprocessorConfig = z.infer<typeof preprocessorConfigSchema>;

const toTriple = (v: number | number[]): [number, number, number] => (typeof v === 'number' ? [v, v, v] : [v[0]!, v[1]!, v[2]!]);

/** Turns a preprocessor_config.json into an explicit spec; `file` names the config in errors. */
export function parseImageProcessor(config: PreprocessorConfig, file: string): ImageProcessorSpec {
  const type = config.image_processor_type ?? config.feature_extractor_type ?? '';
  const clipLike = /clip/i.test(type);
  const bad = (msg: string): never => {
    throw new InputError('BadModel', `${file}: ${msg}`);
  };
  const resample = config.resample ?? (clipLike ? 3 : 2);
  const filter = PIL_FILTERS[resample] ?? bad(`resample ${resample} is not a PIL resampling filter (0..5)`);
  const spec: ImageProcessorSpec = { filter };

  if (config.do_resize ?? true) {
    const size = config.size ?? bad('do_resize is set but size is missing');
    if (typeof size === 'number') {
      // CLIPImageProcessor reads a bare int as shortest_edge; most other processors as a square.
      spec.resize = clipLike ? { mode: 'shortest_edge', size } : { mode: 'exact', height: size, width: size };
    } else if ('shortest_edge' in size) {
      if (size.longest_edge !== undefined) bad('size.longest_edge is not supported');
      spec.resize = { mode: 'shortest_edge', size: size.shortest_edge };
    } else {
      spec.resize = { mode: 'exact', height: size.height, width: size.width };
    }
  }
  if (config.do_center_crop ?? config.crop_size !== undefined) {
    const crop = config.crop_size ?? bad('do_center_crop is set but crop_size is missing');
    if (typeof crop === 'number') spec.crop = { height: crop, width: crop };
    else if ('height' in crop) spec.crop = { height: crop.height, width: crop.width };
    else bad('crop_size must be an int or {height, width}');
  }
  if (config.do_rescale ?? true) spec.rescale = config.rescale_factor ?? 1 / 255;
  if (config.do_normalize ?? true) {
    if (config.image_mean === undefined || config.image_std === undefined) bad('do_normalize is set but image_mean/image_std are missing');
    const std = toTriple(config.image_std!);
    if (std.some((s) => s <= 0)) bad('image_std must be positive');
    spec.normalize = { mean: toTriple(config.image_mean!), std };
  }
  return spec;
}

export async function loadImageProcessor(folder: ModelFolder): Promise<ImageProcessorSpec> {
  const rel = 'preprocessor_config.json';
  return parseImageProcessor(await folder.readJson(rel, preprocessorConfigSchema), folder.display(rel));
}

/** Output [height, width] of a spec, when fixed (it is unless the spec resizes by shortest edge without a crop). */
export function outputSize(spec: ImageProcessorSpec): [number, number] | undefined {
  if (spec.crop) return [spec.crop.height, spec.crop.width];
  if (spec.resize?.mode === 'exact') return [spec.resize.height, spec.resize.width];
  return undefined;
}

/** Python's round(): halves go to the even neighbour (round(0.5) = 0, round(1.5) = 2, round(2.5) = 2). */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** HF / torchvision shortest-edge resize: short side -> size, long side -> int(size * long / short). */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.floor((size * height) / width) };
  return { width: Math.floor((size * width) / height), height: size };
}

/** torchvision CenterCrop offset: round((size - crop) / 2); negative means zero padding. */
export function centerCropOffset(size: number, crop: number): number {
  return pyRound((size - crop) / 2);
}

export interface DecodeOptions {
  /** Refuse images with more pixels (decompression bombs). Default: PIL's limit, 178,956,970. */
  maxPixels?: number;
  /**
   * sharp's failOn level. Default 'truncated': like PIL, refuse truncated files but accept images with minor
   * libjpeg warnings (e.g. extraneous bytes) that PIL also decodes.
   */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
  /**
   * Who resizes. 'sharp' (default): libvips in its thread pool, streaming, fast — within a few levels of
   * Pillow when shrinking, further off when enlarging small images. 'pillow': the exact TypeScript port of
   * Pillow's resampler (bit-exact with Pillow 10.4), single-threaded JS, several times slower.
   */
  resampler?: 'sharp' | 'pillow';
}

function decodeError(err: unknown): SampleError {
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) return new SampleError('too_many_pixels', message);
  return new SampleError('decode_error', `cannot decode image: ${message}`);
}

interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Header check shared by both decode paths: sharp input options and the image size, or a SampleError. */
async function probe(image: Buffer, opts: DecodeOptions): Promise<{ input: SharpOptions; width: number; height: number; hasAlpha: boolean }> {
  if (image.length === 0) throw new SampleError('empty_image', 'image has zero bytes');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  // ignoreIcc: PIL ignores embedded colour profiles, so do we (parity with the reference preprocessing).
  const input: SharpOptions = { limitInputPixels: maxPixels, failOn: opts.failOn ?? 'truncated', ignoreIcc: true };
  let meta: Metadata;
  try {
    meta = await sharp(image, input).metadata();
  } catch (err) {
    throw decodeError(err);
  }
  const { width, height } = meta;
  if (!width || !height) throw new SampleError('empty_image', `image has no pixels (${width ?? 0}x${height ?? 0})`);
  if (width * height > maxPixels) throw new SampleError('too_many_pixels', `image is ${width}x${height}, more than ${maxPixels} pixels`);
  return { input, width, height, hasAlpha: !!meta.hasAlpha };
}

/** Decodes to packed RGB uint8 at full size, like PIL's Image.open(...).convert('RGB'). Throws SampleError. */
export async function decodeRgb(image: Buffer, opts: DecodeOptions = {}): Promise<RawRgb> {
  const { input } = await probe(image, opts);
  try {
    // No rotate(): sharp would apply EXIF orientation, PIL does not. removeAlpha drops alpha without compositing.
    const out = await sharp(image, input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 3 || out.data.length !== out.info.width * out.info.height * 3) {
      throw new Error(`unexpected decoded layout: ${out.info.channels} channels, ${out.data.length} bytes for ${out.info.width}x${out.info.height}`);
    }
    return { data: out.data, width: out.info.width, height: out.info.height };
  } catch (err) {
    throw decodeError(err);
  }
}

/** Resizes decoded RGB per the spec with Pillow's resampling. */
export function resizeRgb(rgb: RawRgb, spec: ImageProcessorSpec): RawRgb {
  let target: { width: number; height: number } | undefined;
  if (spec.resize?.mode === 'shortest_edge') target = shortestEdgeSize(rgb.width, rgb.height, spec.resize.size);
  else if (spec.resize?.mode === 'exact') target = { width: spec.resize.width, height: spec.resize.height };
  if (!target) return rgb;
  return { data: resampleLikePil(rgb.data, rgb.width, rgb.height, target.width, target.height, spec.filter), ...target };
}

/** Center crop (zero padded when smaller), rescale and normalise an RGB HWC buffer into CHW float32. */
export function toPixelTensor(rgb: RawRgb, spec: ImageProcessorSpec): PixelTensor {
  const outH = spec.crop?.height ?? rgb.height;
  const outW = spec.crop?.width ?? rgb.width;
  const top = spec.crop ? centerCropOffset(rgb.height, outH) : 0;
  const left = spec.crop ? centerCropOffset(rgb.width, outW) : 0;
  const plane = outH * outW;
  const data = new Float32Array(3 * plane);
  const scale = spec.rescale ?? 1;
  const mean = spec.normalize?.mean ?? [0, 0, 0];
  const std = spec.normalize?.std ?? [1, 1, 1];
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!;
    const s = std[c]!;
    for (let y = 0; y < outH; y++) {
      const sy = y + top;
      for (let x = 0; x < outW; x++) {
        const sx = x + left;
        const v = sy >= 0 && sy < rgb.height && sx >= 0 && sx < rgb.width ? rgb.data[(sy * rgb.width + sx) * 3 + c]! : 0;
        data[c * plane + y * outW + x] = (v * scale - m) / s;
      }
    }
  }
  return { data, dims: [3, outH, outW] };
}

const SHARP_KERNELS: Partial<Record<PilFilter, 'nearest' | 'linear' | 'cubic' | 'lanczos3'>> = {
  nearest: 'nearest',
  bilinear: 'linear',
  bicubic: 'cubic',
  lanczos: 'lanczos3',
};

/** Decode + resize in one libvips pipeline (never materialises the full-size image in JS). */
async function decodeResizedWithSharp(image: Buffer, spec: ImageProcessorSpec, opts: DecodeOptions, kernel: 'nearest' | 'linear' | 'cubic' | 'lanczos3'): Promise<RawRgb> {
  const { input, width, height, hasAlpha } = await probe(image, opts);
  let target: { width: number; height: number } | undefined;
  if (spec.resize?.mode === 'shortest_edge') target = shortestEdgeSize(width, height, spec.resize.size);
  else if (spec.resize?.mode === 'exact') target = { width: spec.resize.width, height: spec.resize.height };
  try {
    // No rotate(): PIL does not apply EXIF orientation. fastShrinkOnLoad off: JPEG shrink-on-load changes pixels.
    let pipeline = sharp(image, input).removeAlpha().toColourspace('srgb');
    if (hasAlpha) {
      // libvips resizes before removeAlpha and premultiplies, which would darken transparent pixels; PIL's
      // convert('RGB') drops alpha first. So drop it in a pass of its own (rare: alpha is PNG/WebP only).
      const rgb = await pipeline.raw().toBuffer({ resolveWithObject: true });
      pipeline = sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } });
    }
    if (target && (target.width !== width || target.height !== height)) {
      pipeline = pipeline.resize(target.width, target.height, { kernel, fit: 'fill', fastShrinkOnLoad: false });
    }
    const out = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 3) throw new Error(`unexpected decoded layout: ${out.info.channels} channels`);
    return { data: out.data, width: out.info.width, height: out.info.height };
  } catch (err) {
    throw decodeError(err);
  }
}

/** Decode + preprocess one encoded image for a model. Throws SampleError for bad images. */
export async function preprocessImage(image: Buffer, spec: ImageProcessorSpec, opts: DecodeOptions = {}): Promise<PixelTensor> {
  const kernel = SHARP_KERNELS[spec.filter];
  if ((opts.resampler ?? 'sharp') === 'sharp' && kernel) {
    return toPixelTensor(await decodeResizedWithSharp(image, spec, opts, kernel), spec);
  }
  // Pillow-exact path (also for box/hamming, which libvips lacks).
  return toPixelTensor(resizeRgb(await decodeRgb(image, opts), spec), spec);
}

/** Stacks same-sized pixel tensors into one NCHW batch. */
export function stackPixels(pixels: readonly PixelTensor[], expected?: [number, number]): { data: Float32Array; dims: [number, number, number, number] } {
  if (pixels.length === 0) throw new Error('stackPixels: empty batch');
  const [c, h, w] = pixels[0]!.dims;
  for (const p of pixels) {
    if (p.dims[0] !== c || p.dims[1] !== h || p.dims[2] !== w) {
      throw new Error(`pixel tensors in one batch differ in shape: [${pixels[0]!.dims.join(',')}] vs [${p.dims.join(',')}]`);
    }
  }
  if (expected && (h !== expected[0] || w !== expected[1])) {
    throw new Error(`pixel tensor is ${h}x${w}, the model expects ${expected[0]}x${expected[1]} (preprocessed for another model?)`);
  }
  const size = c * h * w;
  const data = new Float32Array(pixels.length * size);
  pixels.forEach((p, i) => data.set(p.data, i * size));
  return { data, dims: [pixels.length, c, h, w] };
}
