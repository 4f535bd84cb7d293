/**
 * The gallery of report.html on real img2dataset shards (lib/sampledata: real JPEGs) and real sharp: one
 * thumbnail per example of each group, next to its captions and scores; placeholders for what cannot be shown.
 */
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import sharp from 'sharp';
import { Img2DatasetShardWriter, readImg2DatasetShard } from '../../../lib/formats/img2dataset';
import { buildGallery, buildReport, exampleId, GALLERY_GROUPS, writeReport, type ExampleRow, type RunReport } from '../../../lib/report';
import { esc } from '../../../lib/report/svg';
import type { DecisionRow } from '../../../lib/run/tables';
import { generateSampleData, type SampleTruth } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { tempDir } from '../../helpers/paths';
import { KNOWN, writePlan, writeRun } from './fixtures';
import { expectSelfContained } from './html-checks';

/** The page's sample figures by group (each group's gallery runs up to the next heading): example id → figure HTML. */
function figures(html: string): Record<string, Map<string, string>> {
  const out: Record<string, Map<string, string>> = {};
  for (const part of html.split('<div class="gallery" data-group="').slice(1)) {
    const group = (out[part.slice(0, part.indexOf('"'))] = new Map<string, string>());
    const section = part.slice(0, part.indexOf('<h3>'));
    for (const f of section.matchAll(/<figure class="sample" data-example="([^"]+)">([\s\S]*?)<\/figure>/g)) group.set(f[1]!, f[2]!);
  }
  return out;
}

const dataUriOf = (figure: string) => /<img src="data:image\/jpeg;base64,([^"]+)" width="(\d+)" height="(\d+)"/.exec(figure);

describe('report.html gallery', () => {
  let runUri: string;
  let tars: string[];
  let truth: Map<string, SampleTruth>; // by key
  let corruptKey: string;
  let missingKey: string;
  let shard0Indexes: number[];

  beforeAll(async () => {
    const root = tempDir('recaption-gallery-');
    const data = await generateSampleData({ out: path.join(root, 'input'), shards: 3, perShard: 12, corrupt: 1 });
    tars = data.shards.map((s) => s.tar);
    truth = new Map(Object.values(data.truth).map((t) => [t.key, t]));
    const good = (shard: number) => [...truth.values()].filter((t) => t.shard === shard && !t.corrupt).sort((a, b) => a.index - b.index);
    const [g0, g1, g2] = [good(0), good(1), good(2)];
    const corrupt = [...truth.values()].find((t) => t.shard === 1 && t.corrupt)!;
    corruptKey = corrupt.key;
    missingKey = g2[0]!.key;

    const kept = (t: SampleTruth, source: 'raw' | 'synthetic', i: number): Partial<DecisionRow> => ({
      key: t.key,
      kept: true,
      source,
      raw_caption: t.caption,
      synthetic_caption: `a synthetic caption of ${t.description}`,
      s_raw: 0.2 + i / 100,
      s_syn: 0.25 + i / 100,
    });
    const dropped = (t: SampleTruth, i: number): Partial<DecisionRow> => ({
      key: t.key,
      raw_caption: t.caption,
      synthetic_caption: `a blurry photo ${i}`,
      s_raw: 0.05 + i / 100,
      s_syn: 0.06 + i / 100,
      reason: 'below_thresholds',
    });
    // ≤ 5 per group, so every row is an example: 4 kept raw, 4 kept synthetic, 4 dropped (one undecodable, one whose tar is gone).
    // Shard 0's examples are its first five good samples, so its tar need not be read to the end.
    const shard0 = [kept(g0[0]!, 'raw', 1), kept(g0[1]!, 'raw', 2), kept(g0[2]!, 'synthetic', 3), kept(g0[3]!, 'synthetic', 4), dropped(g0[4]!, 5)];
    const shard1 = [kept(g1[0]!, 'raw', 6), kept(g1[1]!, 'raw', 7), kept(g1[2]!, 'synthetic', 8), kept(g1[3]!, 'synthetic', 9), dropped(corrupt, 10), dropped(g1[4]!, 11)];
    const shard2 = [dropped(g2[0]!, 12)];
    shard0Indexes = g0.slice(0, 5).map((t) => t.index);
    runUri = await writeRun(root, { name: 'gallery', preset: 'raw30-synthetic70-filtered', shards: { '00000000': shard0, '00000001': shard1, '00000002': shard2 } });
    await writePlan(runUri, { '00000000': tars[0]!, '00000001': tars[1]!, '00000002': tars[2]! });
    await rm(tars[2]!);
  });

  it('shows one thumbnail per kept and dropped example, next to its captions and CLIP scores', async () => {
    const { html: htmlUri, report } = await writeReport(runUri);
    const html = await readFile(htmlUri, 'utf8');
    expectSelfContained(html);
    const figs = figures(html);
    expect(Object.keys(figs)).toEqual([...GALLERY_GROUPS]);

    let thumbnails = 0;
    for (const g of GALLERY_GROUPS) {
      const examples: ExampleRow[] = report.examples[g];
      expect(examples).toHaveLength(4);
      expect([...figs[g]!.keys()].sort()).toEqual(examples.map(exampleId).sort());
      for (const e of examples) {
        const fig = figs[g]!.get(exampleId(e))!;
        expect(fig).toContain(esc(e.raw_caption!));
        expect(fig).toContain(esc(e.synthetic_caption!));
        expect(fig).toContain(`CLIP ${e.s_raw!.toFixed(3)}`);
        expect(fig).toContain(`CLIP ${e.s_syn!.toFixed(3)}`);
        expect(fig).toContain(g === 'dropped' ? 'dropped: <code>below_thresholds</code>' : `kept with the ${g === 'keptRaw' ? 'raw' : 'synthetic'} caption`);
        if (e.key === corruptKey || e.key === missingKey) continue;

        const m = dataUriOf(fig);
        expect(m).not.toBeNull();
        const jpeg = Buffer.from(m![1]!, 'base64');
        const meta = await sharp(jpeg).metadata();
        expect(meta.format).toBe('jpeg');
        expect([meta.width, meta.height]).toEqual([Number(m![2]), Number(m![3])]);
        // fits inside 128 × 128 with the image's aspect ratio (every generated image is larger than that)
        const t = truth.get(e.key)!;
        expect(Math.max(meta.width, meta.height)).toBe(128);
        expect(Math.abs(meta.width / meta.height - t.width / t.height)).toBeLessThan(0.02 * Math.max(t.width / t.height, 1));
        expect(meta.exif).toBeUndefined();
        expect(jpeg.length).toBeLessThan(12_000);
        thumbnails++;
      }
    }
    expect(thumbnails).toBe(10);
    expect(html.length).toBeLessThan(250_000);
    // the images are in the page only: report.json holds the numbers
    expect(await readFile(path.join(runUri, 'report.json'), 'utf8')).not.toContain('data:image');
  });

  it('shows a placeholder with the reason for a missing tar and an undecodable image', async () => {
    const html = await readFile((await writeReport(runUri)).html, 'utf8');
    const dropped = figures(html).dropped!;
    const missing = dropped.get(`00000002/${missingKey}`)!;
    expect(dataUriOf(missing)).toBeNull();
    expect(missing).toContain(`no image: input shard ${esc(tars[2]!)} is missing`);
    const corrupt = dropped.get(`00000001/${corruptKey}`)!;
    expect(dataUriOf(corrupt)).toBeNull();
    expect(corrupt).toContain('no image: the image could not be decoded');
  });

  it('reads each tar only as far as its last example', async () => {
    const read = new Map<string, number>();
    const counting = async function* (tar: string) {
      for await (const s of readImg2DatasetShard(storageFor(tar), tar)) {
        read.set(tar, (read.get(tar) ?? 0) + 1);
        yield s;
      }
    };
    const report = await buildReport(runUri);
    const gallery = await buildGallery(runUri, report.examples, { readShard: counting });
    expect(gallery.size).toBe(12);
    expect(read.get(tars[0]!)).toBe(Math.max(...shard0Indexes) + 1);
    expect(read.get(tars[0]!)).toBeLessThanOrEqual(6); // of 12
    expect(read.has(tars[2]!)).toBe(false); // missing: never opened
  });

  it('turns images upright by their EXIF orientation, never enlarges, strips metadata', async () => {
    const root = tempDir('recaption-gallery-exif-');
    const input = path.join(root, 'input');
    const landscape = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#c33' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const small = await sharp({ create: { width: 40, height: 30, channels: 4, background: { r: 0, g: 90, b: 200, alpha: 0.5 } } }).png().toBuffer();
    const writer = await Img2DatasetShardWriter.open(storageFor(input), input, 0);
    const common = { uid: null, url: 'u', caption: 'c', width: null, height: null, original_width: null, original_height: null };
    await writer.writeSuccess({ ...common, index: 0, image: landscape });
    await writer.writeSuccess({ ...common, index: 1, image: small, imageExt: 'png' });
    await writer.close();
    const runUri = await writeRun(root, { name: 'exif', preset: 'raw', shards: {} });
    await writePlan(runUri, { '00000000': writer.uris.tar });
    const example = (key: string): ExampleRow => ({ shard: '00000000', key, caption: 'c', raw_caption: 'c', synthetic_caption: 's', s_raw: 0.1, s_syn: 0.2, reason: null });
    const examples: RunReport['examples'] = { keptRaw: [example('000000000000'), example('000000000001')], keptSynthetic: [], dropped: [], failed: [] };

    const gallery = await buildGallery(runUri, examples);
    const rotated = gallery.get('00000000/000000000000')!;
    const kept = gallery.get('00000000/000000000001')!;
    expect(rotated).toMatchObject({ kind: 'image', width: 64, height: 128 });
    expect(kept).toMatchObject({ kind: 'image', width: 40, height: 30 });
    for (const t of [rotated, kept]) {
      if (t.kind !== 'image') throw new Error(t.reason);
      const meta = await sharp(Buffer.from(t.dataUri.replace(/^data:image\/jpeg;base64,/, ''), 'base64')).metadata();
      expect([meta.format, meta.width, meta.height, meta.orientation, meta.exif, meta.icc]).toEqual(['jpeg', t.width, t.height, undefined, undefined, undefined]);
    }
  });

  it('a run folder without plan.json (or with a plan that lacks the shard) gets placeholders that say so', async () => {
    const root = tempDir('recaption-gallery-noplan-');
    const known = await writeRun(root, KNOWN);
    const report = await buildReport(known);
    const noPlan = await buildGallery(known, report.examples);
    expect(noPlan.size).toBe(5); // 2 kept raw, 1 kept synthetic, 2 dropped (failed samples are not in the gallery)
    for (const t of noPlan.values()) expect(t).toEqual({ kind: 'placeholder', reason: `no plan.json in ${known}, so the input shards are unknown` });
    const html = await readFile((await writeReport(known)).html, 'utf8');
    expect(html).toContain('no image: no plan.json in');

    await writePlan(known, { '00000000': path.join(root, 'nowhere.tar') });
    const partial = await buildGallery(known, report.examples);
    expect([...partial.values()].map((t) => (t.kind === 'placeholder' ? t.reason : t.kind)).sort()).toEqual([
      `input shard ${path.join(root, 'nowhere.tar')} is missing`,
      `input shard ${path.join(root, 'nowhere.tar')} is missing`,
      `input shard ${path.join(root, 'nowhere.tar')} is missing`,
      'shard 00000001 is not in plan.json',
      'shard 00000001 is not in plan.json',
    ]);
  });
});
