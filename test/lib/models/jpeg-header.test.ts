/**
 * decodeImage reads plain JPEGs' headers in JS instead of asking sharp (jpeg-header.ts): what it reads must be what
 * sharp's metadata() says — size, colour components, EXIF orientation — on real files written by sharp/libvips and by
 * Pillow (the preprocessing fixtures), and anything it is unsure of must come back undefined (sharp decides then).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { readJpegHeader } from '../../../lib/models/jpeg-header';
import { decodeImage } from '../../../lib/models/preprocess';
import { REPO_ROOT } from '../../helpers/paths';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'preprocess');
const fixtureJpegs = (JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as { fixtures: { file: string }[] }).fixtures
  .map((f) => f.file)
  .filter((f) => f.endsWith('.jpg'));

const COMPONENTS: Record<string, number> = { srgb: 3, 'b-w': 1, cmyk: 4 };

async function expectAsSharp(bytes: Buffer): Promise<void> {
  const meta = await sharp(bytes).metadata();
  const ours = readJpegHeader(bytes);
  expect(ours).toEqual({
    width: meta.width,
    height: meta.height,
    components: COMPONENTS[meta.space!],
    precision: 8,
    orientation: meta.orientation ?? 1,
  });
}

describe('readJpegHeader', () => {
  it.each(fixtureJpegs)('%s: reads what sharp reads', async (file) => {
    await expectAsSharp(readFileSync(path.join(FIXTURES, file)));
  });

  it('reads all 8 EXIF orientations, greyscale, progressive and EXIF without an orientation like sharp', async () => {
    const base = () => sharp({ create: { width: 37, height: 23, channels: 3, background: '#3a7' } });
    for (let orientation = 1; orientation <= 8; orientation++) await expectAsSharp(await base().jpeg().withMetadata({ orientation }).toBuffer());
    await expectAsSharp(await base().greyscale().jpeg().toBuffer());
    await expectAsSharp(await base().jpeg({ progressive: true, quality: 70 }).toBuffer());
    await expectAsSharp(await base().jpeg().withExif({ IFD0: { Copyright: 'someone' } }).toBuffer());
  });

  it('says nothing about what is not a readable JPEG header', async () => {
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).jpeg().toBuffer();
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).png().toBuffer();
    expect(readJpegHeader(png)).toBeUndefined();
    expect(readJpegHeader(Buffer.alloc(0))).toBeUndefined();
    expect(readJpegHeader(jpeg.subarray(0, 30))).toBeUndefined(); // cut before the frame header
    const garbled = Buffer.from(jpeg);
    garbled[2] = 0x12; // not a marker where one must be
    expect(readJpegHeader(garbled)).toBeUndefined();
  });

  it('decodeImage gives the same header and pixels with it as sharp alone would', async () => {
    for (const file of fixtureJpegs) {
      const bytes = readFileSync(path.join(FIXTURES, file));
      const meta = await sharp(bytes).metadata();
      const decoded = await decodeImage(bytes);
      expect([decoded.width, decoded.height, decoded.orientation]).toEqual([meta.width, meta.height, meta.orientation ?? 1]);
      if (meta.space !== 'cmyk') {
        const { data } = await sharp(bytes, { ignoreIcc: true }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
        expect(Buffer.compare(Buffer.from(decoded.data), data)).toBe(0);
      }
    }
  });
});
