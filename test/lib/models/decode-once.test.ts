/**
 * Decode once, preprocess for several models: decodeImage + preprocessDecoded give every model exactly the tensor
 * preprocessImage gives it from the bytes, whichever other models share the decode and in whatever order, and the
 * transformers reference sees the EXIF orientation exactly as sharp's auto-orient applies it (OpenAI CLIP's ignores
 * it). Real files, real sharp, the tiny models' real processor configs and ONNX sessions.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { SampleError } from '../../../lib/errors';
import { loadCaptioner } from '../../../lib/models/captioner';
import { loadClip } from '../../../lib/models/clip';
import { ModelFolder } from '../../../lib/models/model-folder';
import { decodeImage, loadImageProcessor, preprocessDecoded, preprocessImage, type DecodedImage, type ImageProcessorSpec } from '../../../lib/models/preprocess';
import type { PixelTensor } from '../../../lib/models/types';
import { REPO_ROOT, TINY_CAPTIONER, TINY_CLIP } from '../../helpers/paths';
import { randomPhoto } from '../../helpers/images';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'preprocess');
const fixtureFiles = (JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as { fixtures: { file: string }[] }).fixtures.map((f) => f.file);
const RESAMPLERS = ['sharp', 'pillow'] as const;

const digest = (data: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
/** A tensor's shape and exact float32 bits, comparable with toEqual. */
const bits = (p: PixelTensor): string => `${p.dims.join('x')}:${digest(p.data)}`;

describe('decodeImage + preprocessDecoded', () => {
  let clip: ImageProcessorSpec;
  let vit: ImageProcessorSpec;

  beforeAll(async () => {
    clip = await loadImageProcessor(await ModelFolder.open(TINY_CLIP));
    vit = await loadImageProcessor(await ModelFolder.open(TINY_CAPTIONER));
    expect([clip.reference, vit.reference]).toEqual(['openai_clip', 'transformers']);
  });

  it.each(fixtureFiles)('%s: a CLIP and a ViT tensor from one decode equal preprocessImage on the bytes', async (file) => {
    const bytes = readFileSync(path.join(FIXTURES, file));
    const decoded = await decodeImage(bytes);
    const stored = digest(decoded.data);
    for (const resampler of RESAMPLERS) {
      // Both orders: a model that wrote into the shared pixels (e.g. premultiplying alpha) would change the next one's.
      for (const spec of [clip, vit, clip]) {
        expect(bits(await preprocessDecoded(decoded, spec, { resampler }))).toEqual(bits(await preprocessImage(bytes, spec, { resampler })));
      }
    }
    expect(digest(decoded.data)).toBe(stored);
  });

  it('keeps the full-size samples as stored, in the layout of the image kind', async () => {
    const header = async (file: string): Promise<Omit<DecodedImage, 'data'>> => {
      const { data, ...rest } = await decodeImage(readFileSync(path.join(FIXTURES, file)));
      expect(data.length).toBe(rest.width * rest.height * rest.channels);
      return rest;
    };
    const plain = { channels: 3, kind: 'plain', hasAlpha: false, sixteenBit: false, orientation: 1 };
    expect(await header('photo-640x480.jpg')).toEqual({ ...plain, width: 640, height: 480 });
    expect(await header('rgba-480x400.png')).toEqual({ ...plain, width: 480, height: 400, channels: 4, kind: 'alpha', hasAlpha: true });
    expect(await header('palette-400x300.png')).toEqual({ ...plain, width: 400, height: 300, channels: 4, kind: 'palette', hasAlpha: true }); // tRNS
    expect(await header('cmyk-300x240.jpg')).toEqual({ ...plain, width: 300, height: 240, channels: 4, kind: 'cmyk' });
    expect(await header('rgb16-300x240.png')).toEqual({ ...plain, width: 300, height: 240, sixteenBit: true });
    expect(await header('exif6-320x240.jpg')).toEqual({ ...plain, width: 320, height: 240, orientation: 6 }); // not rotated
  });

  it('refuses bad images with the same SampleError reasons as preprocessImage', async () => {
    const reason = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof SampleError ? e.reason : `not a SampleError: ${String(e)}`));
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'teal' } }).png().toBuffer();
    expect(await reason(decodeImage(Buffer.alloc(0)))).toBe('empty_image');
    expect(await reason(decodeImage(Buffer.from('not an image')))).toBe('decode_error');
    expect(await reason(decodeImage(png.subarray(0, png.length - 40)))).toBe('decode_error');
    expect(await reason(decodeImage(png, { maxPixels: 64 * 63 }))).toBe('too_many_pixels');
    expect(await reason(decodeImage(png))).toBe('ok');
  });

  describe('EXIF orientation', () => {
    // 120 x 80 with no symmetry: red ramps left to right, green top to bottom, a blue block in one corner.
    const W = 120;
    const H = 80;
    const pixels = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) pixels.set([(x * 2) & 255, y * 3, x < 30 && y < 20 ? 255 : 0], (y * W + x) * 3);
    }
    // Shrinks (so the sharp path runs, with its pre-shrink) to a non-square crop: a transposed result cannot pass.
    const shrinking = (): ImageProcessorSpec => ({ ...vit, resize: { mode: 'shortest_edge', size: 16 }, crop: { height: 16, width: 12 } });

    it.each(['jpeg', 'png'] as const)('%s: transformers gets what sharp.rotate() shows, OpenAI CLIP the pixels as stored, for all 8', async (format) => {
      const spec = shrinking();
      const seen = new Set<string>();
      for (let orientation = 1; orientation <= 8; orientation++) {
        const tagged = await sharp(pixels, { raw: { width: W, height: H, channels: 3 } }).withMetadata({ orientation })[format]().toBuffer();
        expect((await sharp(tagged).metadata()).orientation).toBe(orientation);
        const decoded = await decodeImage(tagged);
        expect([decoded.orientation, decoded.width, decoded.height]).toEqual([orientation, W, H]);
        // References without a tag, losslessly: the auto-oriented image and the stored one.
        const displayed = await sharp(tagged).rotate().png().toBuffer();
        const stored = await sharp(tagged).png().toBuffer();
        for (const resampler of RESAMPLERS) {
          const oriented = bits(await preprocessDecoded(decoded, spec, { resampler }));
          expect(oriented).toEqual(bits(await preprocessImage(displayed, spec, { resampler })));
          expect(bits(await preprocessDecoded(decoded, vit, { resampler }))).toEqual(bits(await preprocessImage(displayed, vit, { resampler })));
          expect(bits(await preprocessDecoded(decoded, clip, { resampler }))).toEqual(bits(await preprocessImage(stored, clip, { resampler })));
          if (resampler === 'sharp') seen.add(oriented);
        }
      }
      expect(seen.size).toBe(8); // eight different images: a wrong orientation could not match its reference
    });
  });

  it('the models preprocess a shared decode exactly as they preprocess the bytes', async () => {
    const scorer = await loadClip(TINY_CLIP);
    const captioner = await loadCaptioner(TINY_CAPTIONER);
    try {
      for (const seed of [0, 1, 2]) {
        const bytes = await randomPhoto(seed);
        const decoded = await decodeImage(bytes);
        expect(bits(await scorer.preprocessDecoded(decoded))).toEqual(bits(await scorer.preprocess(bytes)));
        expect(bits(await captioner.preprocessDecoded(decoded))).toEqual(bits(await captioner.preprocess(bytes)));
        // ...and each with its own processor config.
        expect(bits(await scorer.preprocessDecoded(decoded))).toEqual(bits(await preprocessImage(bytes, clip)));
        expect(bits(await captioner.preprocessDecoded(decoded))).toEqual(bits(await preprocessImage(bytes, vit)));
      }
    } finally {
      await Promise.all([scorer.release(), captioner.release()]);
    }
  });
});
