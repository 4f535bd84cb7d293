/**
 * The stages as plain functions (no Temporal): plan → caption → score → thresholds → select → write →
 * finalize on generated shards with the tiny models; commit markers make every stage skip on a rerun.
 */
import { storageFor } from '../../../lib/storage';
import { readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { loadCaptioner, loadClip } from '../../../lib/models';
import type { Captioner, ClipScorer } from '../../../lib/models/types';
import { captionShard } from '../../../lib/pipeline/caption-stage';
import { finalizeRun } from '../../../lib/pipeline/finalize-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun, listInputShards } from '../../../lib/pipeline/plan-stage';
import { scoreShard } from '../../../lib/pipeline/score-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { CAPTION_TABLE, DECISION_TABLE, SCORE_TABLE, type CaptionRow, type DecisionRow, type ScoreRow } from '../../../lib/run/tables';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../../lib/pipeline/write-stage';
import { generateSampleData } from '../../../lib/sampledata';
import { topFractionThreshold } from '../../helpers/reference-threshold';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';

let captioner: Captioner;
let clip: ClipScorer;
let input: string;

beforeAll(async () => {
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 2, perShard: 8, seed: 11, corrupt: 1, failures: 1 });
});

afterAll(async () => {
  await captioner?.release();
  await clip?.release();
});

const cfg = (output: string, preset = 'raw-top30', name = 'r') =>
  parseConfig(
    {
      run: { name, seed: 5 },
      input: { uri: input },
      output: { uri: output },
      strategy: { preset },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 3, maxLength: 10 },
      score: { batchSize: 4 },
    },
    'test',
  );

describe('pipeline stages', () => {
  it('runs every stage, computes thresholds over the whole pool, and skips committed stages on a rerun', async () => {
    const out = tempDir();
    const plan = await planRun(cfg(out));
    expect(plan.shards.map((s) => s.name)).toEqual(['00000000', '00000001']);
    const layout = new RunLayout(plan.runUri);

    const beats: number[] = [];
    const ctx = { heartbeat: (n: number) => beats.push(n) };
    for (let i = 0; i < 2; i++) {
      const c = await captionShard(plan, i, captioner, ctx);
      expect(c).toMatchObject({ skipped: false, samples: 7, failed: 1 });
      expect(c.counts?.['failed:decode_error']).toBe(1);
      const s = await scoreShard(plan, i, { clip, centroids: null }, ctx);
      expect(s).toMatchObject({ skipped: false, samples: 7, failed: 1 });
    }
    expect(beats.length).toBeGreaterThan(0);

    const captions = await CAPTION_TABLE.decode(await readFile(layout.captions('00000000')), layout.captions('00000000'));
    const corrupt = captions.find((r) => r.error);
    expect(corrupt).toMatchObject({ error: 'decode_error', synthetic_caption: null });
    expect(corrupt!.error_message).toContain(corrupt!.key);

    // The threshold is the pool's (both shards), not a shard's.
    const allRaw: number[] = [];
    for (const shard of ['00000000', '00000001']) {
      const rows = await SCORE_TABLE.decode(await readFile(layout.scores(shard)), layout.scores(shard));
      for (const r of rows) if (r.s_raw !== null) allRaw.push(r.s_raw);
      for (const r of rows.filter((x) => !x.error)) {
        expect(r.s_raw).toBeGreaterThanOrEqual(-1);
        expect(r.s_raw).toBeLessThanOrEqual(1);
      }
    }
    expect(allRaw).toHaveLength(12);
    const t = await computeThresholds(plan);
    expect(t['raw@0.3']).toBe(topFractionThreshold(allRaw, 0.3));

    for (let i = 0; i < 2; i++) {
      await selectShard(plan, i);
      await writeShard(plan, i);
    }
    const summary = await finalizeRun(plan);
    expect(summary.samples).toBe(14);
    // floor(12·0.3) = 3 → top 4 raw scores (no ties with random weights)
    expect(summary.kept).toBe(allRaw.filter((s) => s >= t['raw@0.3']).length);
    expect(summary.keptBySource).toEqual({ raw: summary.kept });
    expect(summary.dropped.decode_error).toBe(2);

    const decisions = await DECISION_TABLE.decode(await readFile(layout.decisions('00000001')), layout.decisions('00000001'));
    expect(decisions).toHaveLength(7);
    expect(decisions.filter((d) => !d.kept).every((d) => d.reason)).toBe(true);

    // Rerun: every stage finds its commit marker and returns at once without rewriting.
    const before = (await stat(layout.captions('00000000'))).mtimeMs;
    expect((await captionShard(plan, 0, captioner)).skipped).toBe(true);
    expect((await scoreShard(plan, 0, { clip, centroids: null })).skipped).toBe(true);
    expect((await selectShard(plan, 0)).skipped).toBe(true);
    expect((await writeShard(plan, 0)).skipped).toBe(true);
    expect((await stat(layout.captions('00000000'))).mtimeMs).toBe(before);
  });

  it('writes the same captions when a shard is redone (per-sample seeded sampling)', async () => {
    const a = await planRun(cfg(tempDir(), 'raw', 'a'));
    const b = await planRun(cfg(tempDir(), 'raw', 'a'));
    await captionShard(a, 1, captioner);
    await captionShard(b, 1, captioner);
    const read = (p: typeof a) => CAPTION_TABLE.read(storageFor(p.runUri), new RunLayout(p.runUri).captions('00000001'));
    expect((await read(a)).map((r) => r.synthetic_caption)).toEqual((await read(b)).map((r) => r.synthetic_caption));
  });

  it("applies DataComp's basic filter after the caption choice, recording each drop's rule", async () => {
    const c = parseConfig({ ...cfg(tempDir(), 'raw', 'basic'), filters: { basic: true } }, 'test');
    const plan = await planRun(c);
    for (let i = 0; i < 2; i++) {
      await captionShard(plan, i, captioner);
      await scoreShard(plan, i, { clip, centroids: null });
    }
    await computeThresholds(plan);
    const rows: DecisionRow[] = [];
    for (let i = 0; i < 2; i++) {
      await selectShard(plan, i);
      rows.push(...(await DECISION_TABLE.read(storageFor(plan.runUri), new RunLayout(plan.runUri).decisions(plan.shards[i].name))));
    }
    const captions: CaptionRow[] = [];
    for (const s of plan.shards) captions.push(...(await CAPTION_TABLE.read(storageFor(plan.runUri), new RunLayout(plan.runUri).captions(s.name))));
    const { basicFilterReason } = await import('../../../lib/strategies/basic-filter');
    for (const r of rows.filter((x) => x.reason !== 'decode_error')) {
      const cap = captions.find((x) => x.key === r.key)!;
      const expected = await basicFilterReason({ caption: r.raw_caption, width: cap.original_width, height: cap.original_height });
      expect(r.kept ? null : r.reason).toBe(expected);
    }
    expect(rows.some((r) => r.reason?.startsWith('basic_filter:'))).toBe(true);
    expect(rows.some((r) => r.kept)).toBe(true);
  });

  it('refuses a missing input folder and a changed config with clear errors', async () => {
    await expect(listInputShards('/nonexistent/shards')).rejects.toThrow(/input folder \/nonexistent\/shards does not exist/);
    const empty = tempDir();
    await expect(listInputShards(empty)).rejects.toThrow(/has no img2dataset shards/);
    const out = tempDir();
    await planRun(cfg(out, 'raw-top30', 'same'));
    const err = await planRun(cfg(out, 'synthetic', 'same')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('ConfigChanged');
  });

  it('records a corrupt shard (bad tar) as an InputError naming the shard', async () => {
    const dir = tempDir();
    await writeFile(path.join(dir, '00000000.tar'), Buffer.alloc(1000, 7));
    const c = parseConfig({ ...cfg(tempDir()), input: { uri: dir }, run: { name: 'bad', seed: 0 } }, 't');
    const plan = await planRun(c);
    const err = await captionShard(plan, 0, captioner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain('00000000.tar');
  });
});
