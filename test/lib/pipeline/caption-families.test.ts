/**
 * Every captioner family and both CLIP layouts through the real annotate stage, chosen by the run config alone
 * (model folder + prompt options), with the tiny exports.
 */
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { loadCaptioner, releaseCachedModels } from '../../../lib/models';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { StageModels } from '../../../lib/pipeline/stage-models';
import { generateSampleData } from '../../../lib/sampledata';
import { annotations } from '../../helpers/annotations';
import { TINY_BLIP2, TINY_CAPTIONER, TINY_CLIP, TINY_CLIP_JOINT, TINY_FLORENCE2, tempDir } from '../../helpers/paths';

let input: string;

beforeAll(async () => {
  input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 1, perShard: 6, seed: 21, corrupt: 1, failures: 0 });
});

afterAll(() => releaseCachedModels());

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
    const summary = await annotateShard(plan, 0, (groups) => models.forAnnotate(config, groups));
    expect(summary).toMatchObject({ samples: 6, failed: 1 });
    // captioner and CLIP both ran on every image, decoded once (the corrupt one fails to decode)
    expect(summary.counts?.decoded).toBe(5);
    // raw30-synthetic70 reads captions and raw scores
    expect(Object.keys(summary.counts ?? {}).filter((k) => k.startsWith('computed:')).sort()).toEqual(['computed:captions', 'computed:rawScores', 'computed:samples']);
    const captions = await annotations.captions(plan, 0);
    const scores = await annotations.rawScores(plan, 0);
    const good = captions.filter((c) => c.synthetic_caption !== null);
    expect(good).toHaveLength(5);
    for (const c of good) expect(c.synthetic_caption).toMatch(/\S/);
    for (const s of scores.filter((x) => x.s_raw !== null)) expect(Math.abs(s.s_raw!)).toBeLessThanOrEqual(1);
    expect(scores.filter((x) => x.s_raw !== null)).toHaveLength(5);
  });
});

describe('caption prompts', () => {
  it('refuses a prompt the family cannot use instead of ignoring it', async () => {
    await expect(loadCaptioner(TINY_CAPTIONER, { taskPrompt: '<CAPTION>' })).rejects.toThrow(InputError);
    await expect(loadCaptioner(TINY_CAPTIONER, { textPrompt: 'a photo of' })).rejects.toThrow(/textPrompt is for BLIP-2/);
    await expect(loadCaptioner(TINY_BLIP2, { taskPrompt: '<CAPTION>' })).rejects.toThrow(/taskPrompt is for Florence-2/);
  });
});
