/**
 * Image decoding (sharp) and model preprocessing, following a folder's preprocessor_config.json the way the
 * PIL-based reference pipelines do it. Which reference a config stands for is read from its processor class
 * (referenceFor):
 *   openai_clip  (CLIP processors) OpenAI CLIP's transform, which open_clip repeats, the one CLIP scores are
 *                computed with: no EXIF rotation; resize in the decoded image's own mode (alpha premultiplied, CMYK
 *                as CMYK, palette images with NEAREST), shortest side to N, long side int(N*long/short); center crop
 *                at round((H-h)/2) (Python round: half to even); then RGB (alpha dropped, CMYK converted naively).
 *   transformers (all others: BLIP, ViT, SigLIP...) transformers' image processors on what a pipeline's load_image
 *                gives them: EXIF rotation applied, RGB first (alpha dropped, not composited), then resize (exact
 *                size or shortest edge), center crop at floor((H-h)/2).
 * Then rescale (1/255) and normalise (mean/std) in float32 into CHW float32. Embedded ICC profiles are ignored,
 * as PIL does. test/lib/models/preprocess-parity.test.ts measures both resamplers against Pillow.
 * An image is decoded once (decodeImage: full size, as stored) and each model's tensor is made from those pixels
 * (preprocessDecoded); preprocessImage is the two in a row, so a tensor never depends on who shared the decode.
 */
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import { z } from 'zod';
import { InputError, SampleError } from '../errors';
import { readJpegHeader } from './jpeg-header';
import type { ModelFolder } from './model-folder';
import { cmykToRgbLikePil, PIL_FILTERS, premultiplyLikePil, resampleLikePil, unpremultiplyLikePil, type PilFilter } from './resample';
import type { PixelTensor } from './types';

/** PIL's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_PIXELS = 2 * 89_478_485;

/** Whose preprocessing a spec reproduces (see the header comment). */
export type PreprocessReference = 'openai_clip' | 'transformers';

export interface ImageProcessorSpec {
  reference: PreprocessReference;
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

/**
 * The reference a config stands for: CLIP processors (CLIPImageProcessor, CLIPFeatureExtractor, ChineseCLIP...)
 * mean OpenAI CLIP's own transform, not transformers' CLIPImageProcessor, which differs from it in crop rounding and
 * in converting to RGB before resizing; every other processor means transformers'.
 */
export function referenceFor(config: PreprocessorConfig): PreprocessReference {
  return /clip/i.test(config.image_processor_type ?? config.feature_extractor_type ?? '') ? 'openai_clip' : 'transformers';
}

/** Turns a preprocessor_config.json into an explicit spec; `file` names the config in errors. */
export function parseImageProcessor(config: PreprocessorConfig, file: string): ImageProcessorSpec {
  const reference = referenceFor(config);
  const clipLike = reference === 'openai_clip';
  const bad = (msg: string): never => {
    throw new InputError('BadModel', `${file}: ${msg}`);
  };
  const resample = config.resample ?? (clipLike ? 3 : 2);
  const filter = PIL_FILTERS[resample] ?? bad(`resample ${resample} is not a PIL resampling filter (0..5)`);
  const spec: ImageProcessorSpec = { reference, filter };

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

/**
 * Center-crop offset along one axis; negative means zero padding. torchvision (openai_clip): round((size - crop) / 2),
 * or when smaller, padding floor((crop - size) / 2) in front. transformers: floor((size - crop) / 2) either way.
 */
export function centerCropOffset(size: number, crop: number, reference: PreprocessReference = 'openai_clip'): number {
  if (reference === 'transformers') return Math.floor((size - crop) / 2);
  return size < crop ? -Math.floor((crop - size) / 2) : pyRound((size - crop) / 2);
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
   * Who resizes the decoded pixels. 'sharp' (default): libvips shrinks, in its thread pool — within a few levels
   * of Pillow; images that grow take the exact port. 'pillow': the exact TypeScript port of Pillow's resampler for
   * every image (bit-exact with Pillow 13), single-threaded JS, several times slower on large images.
   */
  resampler?: 'sharp' | 'pillow';
}

function decodeError(err: unknown): SampleError {
  // First line only: libvips' error buffer is shared by its threads, so later lines can be leftovers of other
  // images' failures — and a sample's recorded reason must not depend on what decoded beside it.
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  if (/pixel limit/i.test(message)) return new SampleError('too_many_pixels', message);
  return new SampleError('decode_error', `cannot decode image: ${message}`);
}

interface RawRgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** How the reference's resize sees the decoded image (PIL's mode, roughly). */
export type SourceKind = 'plain' | 'alpha' | 'palette' | 'cmyk';

/**
 * An image decoded once at full size, in the layout every reference preprocessing can start from: OpenAI CLIP
 * resizes it as stored, in its own mode; transformers orients it and converts it to RGB first (preprocessDecoded).
 * It is the largest buffer of a sample (a 2048 x 1536 photo is 9 MiB): keep it only until the tensors of every model
 * that needs it are made, then drop it.
 */
export interface DecodedImage {
  /**
   * Interleaved 8-bit samples, row-major, EXIF orientation NOT applied: RGB (3 channels); RGBA when hasAlpha; the
   * C, M, Y, K samples when kind is 'cmyk'. Shared by every model's preprocessing, which never writes to it.
   */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  /** 'palette' for palette and 1-bit images (Pillow resizes those with NEAREST), 'alpha' for the others with alpha. */
  readonly kind: SourceKind;
  readonly hasAlpha: boolean;
  /** The file has 16 bits per sample; `data` holds libvips's 8-bit conversion (README, "Preprocessing parity"). */
  readonly sixteenBit: boolean;
  /** EXIF orientation, 1..8 (1 when absent): transformers' load_image applies it, OpenAI CLIP does not. */
  readonly orientation: number;
}

type Header = Omit<DecodedImage, 'data' | 'channels'> & { input: SharpOptions };

/** Header check before decoding: sharp input options, size and kind of the image, or a SampleError. */
async function probe(image: Buffer, opts: DecodeOptions): Promise<Header> {
  if (image.length === 0) throw new SampleError('empty_image', 'image has zero bytes');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  // ignoreIcc: PIL ignores embedded colour profiles, so do we (parity with the reference preprocessing).
  const input: SharpOptions = { limitInputPixels: maxPixels, failOn: opts.failOn ?? 'truncated', ignoreIcc: true };
  // Plain 8-bit JPEGs, nearly every web image: their markers say all we need, without a sharp call.
  const jpeg = readJpegHeader(image);
  if (jpeg && jpeg.precision === 8 && (jpeg.components === 1 || jpeg.components === 3)) {
    const { width, height, orientation } = jpeg;
    if (width * height > maxPixels) throw new SampleError('too_many_pixels', `image is ${width}x${height}, more than ${maxPixels} pixels`);
    return { input, width, height, kind: 'plain', hasAlpha: false, sixteenBit: false, orientation };
  }
  let meta: Metadata;
  try {
    meta = await sharp(image, input).metadata();
  } catch (err) {
    throw decodeError(err);
  }
  const { width, height } = meta;
  if (!width || !height) throw new SampleError('empty_image', `image has no pixels (${width ?? 0}x${height ?? 0})`);
  if (width * height > maxPixels) throw new SampleError('too_many_pixels', `image is ${width}x${height}, more than ${maxPixels} pixels`);
  // Pillow opens palette images (and 1-bit ones) as "P" / "1", which it resizes with NEAREST whatever the filter.
  const kind: SourceKind = meta.space === 'cmyk' ? 'cmyk' : meta.isPalette || meta.bitsPerSample === 1 ? 'palette' : meta.hasAlpha ? 'alpha' : 'plain';
  const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  return { input, width, height, kind, hasAlpha: !!meta.hasAlpha, sixteenBit: meta.depth === 'ushort', orientation };
}

async function raw(pipeline: Sharp, channels: number): Promise<RawRgb> {
  const out = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (out.info.channels !== channels || out.data.length !== out.info.width * out.info.height * channels) {
    throw new Error(`unexpected decoded layout: ${out.info.channels} channels, ${out.data.length} bytes for ${out.info.width}x${out.info.height}`);
  }
  return { data: out.data, width: out.info.width, height: out.info.height };
}

/** sharp input options for RGB we decoded (its size was checked against maxPixels then). */
const rawRgbInput = (rgb: RawRgb): SharpOptions => ({ raw: { width: rgb.width, height: rgb.height, channels: 3 }, limitInputPixels: false });

/**
 * Decodes an encoded image once, at full size (see DecodedImage). Throws SampleError: 'empty_image',
 * 'too_many_pixels' (before decoding, from the header) or 'decode_error'.
 */
export async function decodeImage(image: Buffer, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const { input, ...header } = await probe(image, opts);
  const channels = header.kind === 'cmyk' || header.hasAlpha ? 4 : 3;
  try {
    const s = sharp(image, input);
    // The CMYK samples themselves: libvips would convert through an ICC profile, PIL converts naively.
    const pipeline = header.kind === 'cmyk' ? s.pipelineColourspace('cmyk').toColourspace('cmyk') : (header.hasAlpha ? s.ensureAlpha() : s.removeAlpha()).toColourspace('srgb');
    const { data, width, height } = await raw(pipeline, channels);
    return { ...header, data, width, height, channels };
  } catch (err) {
    throw decodeError(err);
  }
}

const dropAlpha = (rgba: Uint8Array): Uint8Array => {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    out[o] = rgba[i]!;
    out[o + 1] = rgba[i + 1]!;
    out[o + 2] = rgba[i + 2]!;
  }
  return out;
};

/** PIL's convert('RGB') of the decoded samples: alpha dropped (not composited), CMYK converted naively. */
function rgbOf(image: DecodedImage): RawRgb {
  const { width, height } = image;
  if (image.kind === 'cmyk') return { data: cmykToRgbLikePil(image.data), width, height };
  return { data: image.channels === 4 ? dropAlpha(image.data) : image.data, width, height };
}

/**
 * EXIF orientation as sharp's mirrors and clockwise rotation, in the order sharp applies them (mirrors first):
 * the same pixels as sharp(bytes).rotate() (auto-orient), which libvips does as rotation then mirror.
 */
const ORIENTATIONS: Record<number, { flip?: true; flop?: true; angle?: number }> = {
  2: { flop: true },
  3: { angle: 180 },
  4: { flip: true },
  5: { flip: true, angle: 90 }, // transpose
  6: { angle: 90 },
  7: { flop: true, angle: 90 }, // transverse
  8: { angle: 270 },
};

/** RGB with the EXIF orientation applied, as transformers' load_image gives it. */
async function orientedRgb(image: DecodedImage): Promise<RawRgb> {
  const rgb = rgbOf(image);
  const o = ORIENTATIONS[image.orientation];
  if (!o) return rgb;
  let s = sharp(rgb.data, rawRgbInput(rgb));
  if (o.flip) s = s.flip();
  if (o.flop) s = s.flop();
  if (o.angle) s = s.rotate(o.angle);
  return raw(s, 3);
}

/** Decodes to packed RGB uint8 at full size, like PIL's Image.open(...).convert('RGB') (+ exif_transpose when `orient`). */
export async function decodeRgb(image: Buffer, opts: DecodeOptions = {}, orient = false): Promise<RawRgb> {
  const decoded = await decodeImage(image, opts);
  return orient ? orientedRgb(decoded) : rgbOf(decoded);
}

function targetSize(width: number, height: number, spec: ImageProcessorSpec): { width: number; height: number } | undefined {
  if (spec.resize?.mode === 'shortest_edge') return shortestEdgeSize(width, height, spec.resize.size);
  if (spec.resize?.mode === 'exact') return { width: spec.resize.width, height: spec.resize.height };
  return undefined;
}

/** Whether the spec's resize makes the image larger on either axis. */
function enlarges(image: { width: number; height: number }, spec: ImageProcessorSpec): boolean {
  const target = targetSize(image.width, image.height, spec);
  return target !== undefined && (target.width > image.width || target.height > image.height);
}

/** Resizes decoded RGB per the spec with Pillow's resampling. */
export function resizeRgb(rgb: RawRgb, spec: ImageProcessorSpec, filter: PilFilter = spec.filter): RawRgb {
  const target = targetSize(rgb.width, rgb.height, spec);
  if (!target) return rgb;
  return { data: resampleLikePil(rgb.data, rgb.width, rgb.height, target.width, target.height, filter), ...target };
}

type SharpKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

const SHARP_KERNELS: Partial<Record<PilFilter, SharpKernel>> = {
  nearest: 'nearest',
  bilinear: 'linear',
  bicubic: 'cubic',
  lanczos: 'lanczos3',
};

/**
 * The size libvips should pre-shrink an axis to before its last resize: when shrinking 4x or more, libvips would
 * box-average by floor(factor / 2) first (its reducing gap, which sharp does not expose), further from Pillow's
 * single filter than a pre-shrink by the same factor with the model's own kernel (README, "Preprocessing parity").
 */
function preShrunk(from: number, to: number): number {
  const k = Math.floor(from / to / 2);
  return k >= 2 ? Math.round(from / k) : from;
}

/**
 * libvips resize (+ crop) of decoded RGB on libuv's threads, computing only the cropped part of the last resize.
 * It matches Pillow within a few levels when shrinking but not when enlarging (it interpolates instead of
 * filtering), so callers send images that grow on either axis, which are small, to the Pillow-exact port.
 */
async function shrinkWithSharp(rgb: RawRgb, spec: ImageProcessorSpec, kernel: SharpKernel): Promise<RawRgb> {
  const size = targetSize(rgb.width, rgb.height, spec);
  if (!size || (size.width === rgb.width && size.height === rgb.height)) return rgb; // toPixelTensor crops
  const pre = kernel === 'nearest' ? rgb : { width: preShrunk(rgb.width, size.width), height: preShrunk(rgb.height, size.height) };
  const input = pre.width === rgb.width && pre.height === rgb.height ? rgb : await raw(sharp(rgb.data, rawRgbInput(rgb)).resize(pre.width, pre.height, { kernel, fit: 'fill' }), 3);
  let pipeline = sharp(input.data, rawRgbInput(input)).resize(size.width, size.height, { kernel, fit: 'fill' });
  const crop = spec.crop;
  if (crop && crop.width <= size.width && crop.height <= size.height) {
    const left = centerCropOffset(size.width, crop.width, spec.reference);
    const top = centerCropOffset(size.height, crop.height, spec.reference);
    pipeline = pipeline.extract({ left, top, width: crop.width, height: crop.height });
  }
  return raw(pipeline, 3);
}

/** transformers: load_image's RGB (EXIF orientation applied, alpha dropped, CMYK converted), then the resize. */
async function transformersResize(image: DecodedImage, spec: ImageProcessorSpec, kernel: SharpKernel | undefined): Promise<RawRgb> {
  const rgb = await orientedRgb(image);
  return kernel && !enlarges(rgb, spec) ? shrinkWithSharp(rgb, spec, kernel) : resizeRgb(rgb, spec);
}

/**
 * OpenAI CLIP: the image as stored, resized in its own mode. libvips takes only plain images it shrinks; Pillow's
 * port the rest: palette images (NEAREST whatever the filter: exact and cheap), images with alpha (Pillow resizes
 * them premultiplied in 8 bits, libvips in floats: where alpha is low, un-premultiplying turns that into tens of
 * levels) and CMYK (sharp takes 4 raw channels as RGBA and would premultiply by K as if it were alpha).
 */
async function openaiClipResize(image: DecodedImage, spec: ImageProcessorSpec, kernel: SharpKernel | undefined): Promise<RawRgb> {
  if (image.kind === 'palette') return resizeRgb(rgbOf(image), spec, 'nearest');
  if (image.kind === 'plain') return kernel && !enlarges(image, spec) ? shrinkWithSharp(rgbOf(image), spec, kernel) : resizeRgb(rgbOf(image), spec);
  const target = targetSize(image.width, image.height, spec);
  if (!target || (target.width === image.width && target.height === image.height)) return resizeRgb(rgbOf(image), spec);
  // RGBA (premultiplied unless NEAREST, as PIL) or CMYK: 4 channels through the resampler, then to RGB.
  const premultiply = image.kind === 'alpha' && spec.filter !== 'nearest';
  const samples = premultiply ? Uint8Array.from(image.data) : image.data; // a copy: other models read the decoded image
  if (premultiply) premultiplyLikePil(samples);
  const out = resampleLikePil(samples, image.width, image.height, target.width, target.height, spec.filter, 4);
  if (premultiply) unpremultiplyLikePil(out);
  return { data: image.kind === 'cmyk' ? cmykToRgbLikePil(out) : dropAlpha(out), ...target };
}

/** Per spec: the float32 tensor value of every uint8 level per channel, [3 x 256], cached. */
const tables = new WeakMap<ImageProcessorSpec, Float32Array>();

/**
 * The reference's float32 arithmetic, one rounding per operation as numpy / torch do it: x = f32(v * rescale)
 * (ToTensor's f32(v / 255) and transformers' f32(f64(v) * (1/255)) agree for every uint8), then f32(f32(x - mean) / std).
 * fround of a double operation on floats equals the float operation (double has more than 2 x 24 + 2 bits).
 */
export function normaliseTable(spec: ImageProcessorSpec): Float32Array {
  let table = tables.get(spec);
  if (table) return table;
  table = new Float32Array(3 * 256);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const mean = f(spec.normalize?.mean[c] ?? 0);
    const std = f(spec.normalize?.std[c] ?? 1);
    for (let v = 0; v < 256; v++) {
      const x = spec.rescale === undefined ? v : f(v * spec.rescale);
      table[c * 256 + v] = spec.normalize ? f(f(x - mean) / std) : x;
    }
  }
  tables.set(spec, table);
  return table;
}

/**
 * Center crop (zero padded when smaller), rescale and normalise an RGB HWC buffer into CHW float32: one table
 * lookup per value, copied as 32-bit patterns (twice as fast as going through float conversions).
 */
export function toPixelTensor(rgb: RawRgb, spec: ImageProcessorSpec): PixelTensor {
  const { data: src, width, height } = rgb;
  const outH = spec.crop?.height ?? height;
  const outW = spec.crop?.width ?? width;
  const top = spec.crop ? centerCropOffset(height, outH, spec.reference) : 0;
  const left = spec.crop ? centerCropOffset(width, outW, spec.reference) : 0;
  const plane = outH * outW;
  const out = new Float32Array(3 * plane);
  const bits = new Uint32Array(out.buffer);
  const table = new Uint32Array(normaliseTable(spec).buffer);
  // Output rows [y0, y1) and columns [x0, x1) come from the image; the rest is padding (uint8 0).
  const y0 = Math.max(0, -top);
  const y1 = Math.min(outH, height - top);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(outW, width - left);
  if (y0 > 0 || x0 > 0 || y1 < outH || x1 < outW) for (let c = 0; c < 3; c++) bits.fill(table[c * 256]!, c * plane, (c + 1) * plane);
  for (let y = y0; y < y1; y++) {
    let p = ((y + top) * width + x0 + left) * 3;
    for (let o = y * outW + x0, end = y * outW + x1; o < end; o++, p += 3) {
      bits[o] = table[src[p]!]!;
      bits[o + plane] = table[256 + src[p + 1]!]!;
      bits[o + 2 * plane] = table[512 + src[p + 2]!]!;
    }
  }
  return { data: out, dims: [3, outH, outW] };
}

/**
 * One model's tensor from a decoded image, per its spec and reference (see the header comment). Reads `image`
 * without changing it, so several models can preprocess the same decode.
 */
export async function preprocessDecoded(image: DecodedImage, spec: ImageProcessorSpec, opts: DecodeOptions = {}): Promise<PixelTensor> {
  // libvips has no box or hamming filter: those take the Pillow-exact path, as 'pillow' takes every image.
  const kernel = (opts.resampler ?? 'sharp') === 'sharp' ? SHARP_KERNELS[spec.filter] : undefined;
  const rgb = spec.reference === 'transformers' ? await transformersResize(image, spec, kernel) : await openaiClipResize(image, spec, kernel);
  return toPixelTensor(rgb, spec);
}

/** Decode + preprocess one encoded image for a model: the one path, decodeImage then preprocessDecoded. Throws SampleError for bad images. */
export async function preprocessImage(image: Buffer, spec: ImageProcessorSpec, opts: DecodeOptions = {}): Promise<PixelTensor> {
  return preprocessDecoded(await decodeImage(image, opts), spec, opts);
}

/** Stacks same-sized pixel tensors into one NCHW batch. */
export function stackPixels(pixels: readonly PixelTensor[], expected?: [number, number]): { data: Float32Array; dims: [number, number, number, number] } {
  const [c, h, w] = checkPixelBatch(pixels, expected);
  const size = c * h * w;
  const data = new Float32Array(pixels.length * size);
  pixels.forEach((p, i) => data.set(p.data, i * size));
  return { data, dims: [pixels.length, c, h, w] };
}

/** The common [C, H, W] of a batch; throws when the images differ or do not have the model's size. */
export function checkPixelBatch(pixels: readonly PixelTensor[], expected?: [number, number]): [number, number, number] {
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
  return [c, h, w];
}
