/**
 * Every captioner family and both CLIP layouts through the real caption and score stages, chosen by the run
 * config alone (model folder + prompt options), with the tiny exports.
 */
import { storageFor } from '../../../lib/storage';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import type { ColumnDecls, ParquetTable } from '../../../lib/formats/parquet';
import { loadCaptioner, releaseCachedModels } from '../../../lib/models';
import { captionShard } from '../../../lib/pipeline/caption-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { StageModels } from '../../../lib/pipeline/stage-models';
import { scoreShard } from '../../../lib/pipeline/score-stage';
import { CAPTION_TABLE, SCORE_TABLE, type CaptionRow, type ScoreRow } from '../../../lib/run/tables';
import { generateSampleData } from '../../../lib/sampledata';
import { TINY_BLIP2, TINY_CAPTIONER, TINY_CLIP, TINY_CLIP_JOINT, TINY_FLORENCE2, tempDir } from '../../helpers/paths';

let input: string;

beforeAll(async () => {
  input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 1, perShard: 6, seed: 21, corrupt: 1, failures: 0 });
});

afterAll(() => releaseCachedModels());

const read = <C extends ColumnDecls>(table: ParquetTable<C>, file: string) => table.read(storageFor(file), file);

const cases: [string, Record<string, unknown>, string][] = [
  ['vision-encoder-decoder', { path: TINY_CAPTIONER }, TINY_CLIP],
  ['florence2', { path: TINY_FLORENCE2, taskPrompt: '<DETAILED_CAPTION>' }, TINY_CLIP_JOINT],
  ['blip-2', { path: TINY_BLIP2, textPrompt: 'a photo of' }, TINY_CLIP],
];

describe.each(cases)('%s captioner in the pipeline', (family, captioner, clipDir) => {
  it('captions every decodable image and scores it, from the run config alone', async () => {
    const config = parseConfig(
      {
        run: { name: `fam-${family}`, seed: 1 },
        input: { uri: input },
        output: { uri: tempDir() },
        strategy: { preset: 'raw30-synthetic70' },
        models: { captioner, clip: { path: clipDir } },
        caption: { batchSize: 4, maxLength: 10 },
      },
      'test',
    );
    const plan = await planRun(config);
    const models = new StageModels();
    const model = await models.captioner(config);
    expect(model.family).toBe(family === 'blip-2' ? 'prefix-lm' : family);
    expect(await captionShard(plan, 0, model)).toMatchObject({ samples: 6, failed: 1 });
    expect(await scoreShard(plan, 0, await models.forScore(config))).toMatchObject({ samples: 6, failed: 1 });
    const layout = new RunLayout(plan.runUri);
    const captions = await read(CAPTION_TABLE, layout.captions('00000000'));
    const scores = await read(SCORE_TABLE, layout.scores('00000000'));
    const good = captions.filter((c) => !c.error);
    expect(good).toHaveLength(5);
    for (const c of good) expect(c.synthetic_caption).toMatch(/\S/);
    for (const s of scores.filter((x) => !x.error)) expect(Math.abs(s.s_syn!)).toBeLessThanOrEqual(1);
  });
});

describe('caption prompts', () => {
  it('refuses a prompt the family cannot use instead of ignoring it', async () => {
    await expect(loadCaptioner(TINY_CAPTIONER, { taskPrompt: '<CAPTION>' })).rejects.toThrow(InputError);
    await expect(loadCaptioner(TINY_CAPTIONER, { textPrompt: 'a photo of' })).rejects.toThrow(/textPrompt is for BLIP-2/);
    await expect(loadCaptioner(TINY_BLIP2, { taskPrompt: '<CAPTION>' })).rejects.toThrow(/taskPrompt is for Florence-2/);
  });
});
