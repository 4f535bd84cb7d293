/**
 * Caption candidates and best-of-N by CLIP score, through the real stages with the tiny models: candidate 0 is the
 * one-candidate caption, the kept candidate has the highest CLIP score, and the decision carries its text.
 */
import { readImg2DatasetShard } from '../../../lib/formats/img2dataset';
import { storageFor } from '../../../lib/storage';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { bestCandidate, captionCandidates, candidateSeed } from '../../../lib/models/candidates';
import { cosine } from '../../../lib/models/similarity';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { Captioner, ClipScorer } from '../../../lib/models/types';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { DECISION_TABLE } from '../../../lib/run/tables';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { generateSampleData } from '../../../lib/sampledata';
import { annotations } from '../../helpers/annotations';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { givenModels } from '../../helpers/stages';

let captioner: Captioner;
let clip: ClipScorer;
let input: string;

beforeAll(async () => {
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 1, perShard: 10, seed: 3, corrupt: 1, failures: 0 });
});

afterAll(async () => {
  await captioner?.release();
  await clip?.release();
});

const cfg = (output: string, caption: Record<string, unknown>) =>
  parseConfig(
    {
      run: { name: 'bon', seed: 9 },
      input: { uri: input },
      output: { uri: output },
      strategy: { preset: 'synthetic-top50' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 8, maxLength: 12, ...caption },
    },
    'test',
  );


describe('caption candidates', () => {
  it('gives candidate 0 the sample seed and the others their own; ties go to the first', () => {
    expect(candidateSeed('9:abc', 0)).toBe('9:abc');
    expect(candidateSeed('9:abc', 2)).toBe('9:abc#2');
    expect(bestCandidate([0.1, 0.3, 0.3, 0.2])).toBe(1);
    expect(bestCandidate([0.5])).toBe(0);
  });

  it('samples N distinct candidates per image; candidate 0 equals the one-candidate caption', async () => {
    const out = tempDir();
    const plan = await planRun(cfg(out, { candidates: 1 }));
    await annotateShard(plan, 0, givenModels(captioner, clip)(plan));
    const single = await annotations.captions(plan, 0);

    const out4 = tempDir();
    const plan4 = await planRun(cfg(out4, { candidates: 4 }));
    const summary = await annotateShard(plan4, 0, givenModels(captioner, clip)(plan4));
    expect(summary).toMatchObject({ samples: 10, failed: 1 });
    const captions = await annotations.captions(plan4, 0);
    const candidates = await annotations.candidates(plan4, 0);
    expect(candidates).toHaveLength(9 * 4);

    for (const row of captions.filter((r) => r.synthetic_caption !== null)) {
      const mine = candidates.filter((c) => c.key === row.key).sort((a, b) => a.candidate - b.candidate);
      expect(mine.map((c) => c.candidate)).toEqual([0, 1, 2, 3]);
      expect(mine[0]!.caption).toBe(row.synthetic_caption);
      expect(row.synthetic_caption).toBe(single.find((s) => s.key === row.key)!.synthetic_caption);
    }
    // Sampling with different seeds gives different captions for most images.
    const distinct = captions.filter((r) => r.synthetic_caption !== null).map((r) => new Set(candidates.filter((c) => c.key === r.key).map((c) => c.caption)).size);
    expect(distinct.filter((d) => d > 1).length).toBeGreaterThanOrEqual(7);
  });

  it('keeps the candidate with the highest CLIP score and carries it into the decisions', async () => {
    const out = tempDir();
    const plan = await planRun(cfg(out, { candidates: 3, pick: 'clip' }));
    const layout = new RunLayout(plan.runUri);
    const shard = plan.shards[0]!.name;
    await annotateShard(plan, 0, givenModels(captioner, clip)(plan));
    await computeThresholds(plan);
    await selectShard(plan, 0);

    const candidates = await annotations.candidates(plan, 0);
    const scores = (await annotations.syntheticScores(plan, 0)).map((r, i) => ({ ...r, position: i }));
    const decisions = await DECISION_TABLE.read(storageFor(plan.runUri), layout.decisions(shard));
    const usable = scores.filter((s) => s.s_syn !== null);
    expect(usable).toHaveLength(9);

    let improved = 0;
    for (const s of usable) {
      const texts = candidates.filter((c) => c.key === s.key).sort((a, b) => a.candidate - b.candidate).map((c) => c.caption);
      expect(texts).toHaveLength(3);
      // Recompute every candidate's cosine independently of the stage.
      const sample = (await annotations.captions(plan, 0))[s.position]!;
      expect(sample.synthetic_caption).toBe(texts[0]);
      const textEmb = await clip.embedTexts(texts);
      const imgEmb = await imageEmbedding(s.key);
      const cos = textEmb.map((t) => cosine(imgEmb, t));
      expect(s.synthetic_choice).toBe(bestCandidate(cos));
      expect(s.s_syn).toBeCloseTo(Math.max(...cos), 5);
      expect(s.s_syn_first).toBeCloseTo(cos[0]!, 5);
      expect(s.synthetic_caption).toBe(texts[s.synthetic_choice!]);
      if (s.synthetic_choice! > 0) improved++;
      const d = decisions.find((x) => x.key === s.key)!;
      expect(d.synthetic_caption).toBe(s.synthetic_caption);
      if (d.source === 'synthetic') expect(d.caption).toBe(s.synthetic_caption);
    }
    // With 3 random candidates, the first is the best for only about a third of the images.
    expect(improved).toBeGreaterThan(0);
    expect(decisions.some((d) => d.source === 'synthetic')).toBe(true);

    async function imageEmbedding(key: string): Promise<Float32Array> {
      const tar = plan.shards[0]!.tar;
      for await (const sample of readImg2DatasetShard(storageFor(tar), tar)) {
        if (sample.key === key) return (await clip.embedImages([await clip.preprocess(sample.image!)]))[0]!;
      }
      throw new Error(`no sample ${key}`);
    }
  });

  it('pick "first" keeps candidate 0 and its score', async () => {
    const out = tempDir();
    const plan = await planRun(cfg(out, { candidates: 2, pick: 'first' }));
    await annotateShard(plan, 0, givenModels(captioner, clip)(plan));
    const scores = await annotations.syntheticScores(plan, 0);
    for (const s of scores.filter((x) => x.s_syn !== null)) {
      expect(s.synthetic_choice).toBe(0);
      expect(s.s_syn).toBe(s.s_syn_first);
    }
  });

  it('captionCandidates batches all candidates of all images together', async () => {
    const pixels = [];
    const tar = path.join(input, '00000000.tar');
    for await (const s of readImg2DatasetShard(storageFor(tar), tar)) {
      if (pixels.length === 2) break;
      try {
        pixels.push(await captioner.preprocess(s.image!));
      } catch {
        // the corrupt sample
      }
    }
    const opts = { ...PAPER_CAPTION_OPTIONS, maxLength: 8 };
    const both = await captionCandidates(captioner, pixels, ['a', 'b'], 3, opts);
    const alone = await captionCandidates(captioner, [pixels[1]!], ['b'], 3, opts);
    expect(both[1]).toEqual(alone[0]);
    expect(both.map((c) => c.length)).toEqual([3, 3]);
  });
});
