/**
 * The stages as plain functions (no Temporal): plan → annotate → thresholds → select → write → finalize on
 * generated shards with the tiny models; commit markers make every stage skip on a rerun.
 */
import { stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { loadCaptioner, loadClip } from '../../../lib/models';
import type { Captioner, ClipScorer } from '../../../lib/models/types';
import { annotateShard, type LoadAnnotateModels } from '../../../lib/pipeline/annotate-stage';
import { finalizeRun } from '../../../lib/pipeline/finalize-stage';
import { listInputShards, planRun } from '../../../lib/pipeline/plan-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../../lib/pipeline/write-stage';
import { RunLayout } from '../../../lib/run/layout';
import type { RunPlan } from '../../../lib/run/plan';
import { DECISION_TABLE, type DecisionRow, type SampleRow } from '../../../lib/run/tables';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { annotationFile, annotations } from '../../helpers/annotations';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { topFractionThreshold } from '../../helpers/reference-threshold';
import { givenModels, noModels } from '../../helpers/stages';

let captioner: Captioner;
let clip: ClipScorer;
let input: string;
let models: (plan: RunPlan) => LoadAnnotateModels;

beforeAll(async () => {
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  models = givenModels(captioner, clip);
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
    // raw-top30 reads raw CLIP scores only: no captions are made for it.
    expect(plan.annotations.compute).toEqual(['rawScores']);
    const layout = new RunLayout(plan.runUri);

    const beats: number[] = [];
    const ctx = { heartbeat: (n: number) => beats.push(n) };
    for (let i = 0; i < 2; i++) {
      const a = await annotateShard(plan, i, models(plan), ctx);
      expect(a).toMatchObject({ skipped: false, samples: 7, failed: 1 });
      expect(a.counts?.['failed:decode_error']).toBe(1);
      // every image decoded once (the corrupt one fails to)
      expect(a.counts?.decoded).toBe(6);
    }
    expect(beats.length).toBeGreaterThan(0);

    const samples = await annotations.samples(plan, 0);
    const corrupt = samples.find((r) => r.error);
    expect(corrupt).toMatchObject({ error: 'decode_error' });
    expect(corrupt!.error_message).toContain(corrupt!.key);

    // The threshold is the pool's (both shards), not a shard's.
    const allRaw: number[] = [];
    for (const shard of [0, 1]) {
      const rows = await annotations.rawScores(plan, shard);
      expect(rows.map((r) => r.key)).toEqual((await annotations.samples(plan, shard)).map((r) => r.key));
      for (const r of rows) if (r.s_raw !== null) allRaw.push(r.s_raw);
      for (const r of rows.filter((x) => x.s_raw !== null)) {
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
    // floor(12·0.3) = 3 → top 4 raw scores (no ties with random weights), less any blank alt-text among them
    const atTau = allRaw.filter((s) => s >= t['raw@0.3']).length;
    expect(summary.kept).toBe(atTau - (summary.dropped.empty_raw_caption ?? 0));
    expect(summary.kept).toBeGreaterThan(0);
    expect(summary.keptBySource).toEqual({ raw: summary.kept });
    expect(summary.dropped.decode_error).toBe(2);

    const decisions = await DECISION_TABLE.read(storageFor(out), layout.decisions('00000001'));
    expect(decisions).toHaveLength(7);
    expect(decisions.filter((d) => !d.kept).every((d) => d.reason)).toBe(true);

    // Rerun: every stage finds its commit marker and returns at once without rewriting.
    const before = (await stat(annotationFile(plan, 'rawScores', 0))).mtimeMs;
    expect((await annotateShard(plan, 0, noModels)).skipped).toBe(true);
    expect((await selectShard(plan, 0)).skipped).toBe(true);
    expect((await writeShard(plan, 0)).skipped).toBe(true);
    expect((await stat(annotationFile(plan, 'rawScores', 0))).mtimeMs).toBe(before);
  });

  it('writes the same captions when a shard is redone (per-sample seeded sampling)', async () => {
    // Two output folders: two annotation folders, so the captions are made twice.
    const a = await planRun(cfg(tempDir(), 'synthetic', 'a'));
    const b = await planRun(cfg(tempDir(), 'synthetic', 'a'));
    expect(a.annotations.root).not.toBe(b.annotations.root);
    await annotateShard(a, 1, models(a));
    await annotateShard(b, 1, models(b));
    const captions = async (p: RunPlan) => (await annotations.captions(p, 1)).map((r) => r.synthetic_caption);
    expect(await captions(a)).toEqual(await captions(b));
    expect((await captions(a)).filter((c) => c !== null)).toHaveLength(6);
  });

  it("applies DataComp's basic filter after the caption choice, recording each drop's rule", async () => {
    const c = parseConfig({ ...cfg(tempDir(), 'raw', 'basic'), filters: { basic: true } }, 'test');
    const plan = await planRun(c);
    // `raw` needs no model: the select stage indexes the samples itself (decoding each image on the CPU).
    expect(plan.annotations.compute).toEqual([]);
    await computeThresholds(plan);
    const rows: DecisionRow[] = [];
    for (let i = 0; i < 2; i++) {
      await selectShard(plan, i);
      rows.push(...(await DECISION_TABLE.read(storageFor(plan.runUri), new RunLayout(plan.runUri).decisions(plan.shards[i]!.name))));
    }
    const samples: SampleRow[] = [];
    for (const i of [0, 1]) samples.push(...(await annotations.samples(plan, i)));
    const { basicFilterReason } = await import('../../../lib/strategies/basic-filter');
    expect(rows.filter((r) => r.reason === 'decode_error')).toHaveLength(2);
    for (const r of rows.filter((x) => x.reason !== 'decode_error')) {
      const s = samples.find((x) => x.key === r.key)!;
      const expected = r.raw_caption.trim() === '' ? 'empty_raw_caption' : await basicFilterReason({ caption: r.raw_caption, width: s.original_width, height: s.original_height });
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
    // names what changed, and that a new run name reuses the annotations
    expect((err as Error).message).toMatch(/changed:\n {2}strategy\.preset: "raw-top30" -> "synthetic"/);
    expect((err as Error).message).toMatch(/use a new run\.name — it reuses every annotation/);
  });

  it('records a corrupt shard (bad tar) as an InputError naming the shard', async () => {
    const dir = tempDir();
    await writeFile(path.join(dir, '00000000.tar'), Buffer.alloc(1000, 7));
    const c = parseConfig({ ...cfg(tempDir()), input: { uri: dir }, run: { name: 'bad', seed: 0 } }, 't');
    const plan = await planRun(c);
    const err = await annotateShard(plan, 0, models(plan)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain('00000000.tar');
  });
});
