import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { InputError } from '../../../lib/errors';
import { loadCaptioner, loadCaptionModel } from '../../../lib/models/captioner';
import { generateTokens } from '../../../lib/models/generation';
import { SeededRng } from '../../../lib/models/rng';
import { nextToken } from '../../../lib/models/sampling';
import { tinyFlorence2Files } from '../../../lib/models/tiny/florence2-model';
import { WeightInit } from '../../../lib/models/tiny/layers';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { CaptionOptions, PixelTensor } from '../../../lib/models/types';
import { tinyCaptioner } from './captioner-fixture';
import { expectCacheMatchesRecompute, expectKeepRowsIsolation, expectLengthBounds } from './decode-checks';
import { maxAbsDiff } from './max-abs-diff';
import { copyFolder, editOnnx, float16Io, graphOf, renameValue } from './onnx-edit';


const GREEDY: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, topK: 1 };
const TASKS = ['<CAPTION>', '<DETAILED_CAPTION>', '<MORE_DETAILED_CAPTION>'];

/**
 * float16Io for graphs with If subgraphs: subgraph nodes that read a float graph input from the outer scope are
 * pointed at its float32 cast too (float16Io itself rewrites the main graph only).
 */
function float16IoDeep(model: onnx.ModelProto): void {
  const graph = graphOf(model);
  const floats = new Set(graph.input.filter((i) => i.type?.tensorType?.elemType === onnx.TensorProto.DataType.FLOAT).map((i) => String(i.name)));
  const visit = (g: onnx.IGraphProto, nested: boolean): void => {
    for (const node of g.node ?? []) {
      if (nested) node.input = (node.input ?? []).map((n) => (floats.has(n) ? `${n}__f32` : n));
      for (const a of node.attribute ?? []) if (a.g) visit(a.g, true);
    }
  };
  visit(graph, false);
  float16Io(model);
}

describe('captioner (florence2)', () => {
  const fx = tinyCaptioner('florence2Dir', 'recaption-florence2-');

  it('loads as the florence2 family, decoding from </s> then the forced <s>', () => {
    expect(fx.captioner.family).toBe('florence2');
    expect(fx.model.modelDir).toBe(path.resolve(fx.dir));
    const id = (t: string): number | undefined => fx.model.tokenizer.tokenToId(t);
    expect(fx.model.promptIds).toEqual([id('</s>'), id('<s>')]);
    expect(fx.model.eosIds).toEqual([id('</s>')]);
    expect(fx.pixels[0]!.dims).toEqual([3, 64, 64]);
  });

  it('writes non-empty captions made of words', async () => {
    const captions = await fx.captioner.caption(fx.pixels, fx.pixels.map((_, i) => `words-${i}`), PAPER_CAPTION_OPTIONS);
    expect(captions).toHaveLength(6);
    for (const c of captions) {
      expect(c).toMatch(/^[\p{L}\p{N}\p{P}]+( [\p{L}\p{N}\p{P}]+)*$/u);
      expect(c.split(' ').filter((w) => /^\p{L}{2,}$/u.test(w)).length).toBeGreaterThan(0);
    }
    expect(new Set(captions).size).toBe(6);
  });

  it('is deterministic per seed and independent of batch composition', async () => {
    const alone = await fx.captioner.caption([fx.pixels[2]!], ['seed-x'], PAPER_CAPTION_OPTIONS);
    expect(await fx.captioner.caption([fx.pixels[2]!], ['seed-x'], PAPER_CAPTION_OPTIONS)).toEqual(alone);
    const batch = await fx.captioner.caption([fx.pixels[0]!, fx.pixels[4]!, fx.pixels[2]!, fx.pixels[1]!, fx.pixels[5]!], ['a', 'b', 'seed-x', 'c', 'd'], PAPER_CAPTION_OPTIONS);
    expect(batch[2]).toBe(alone[0]);
    const other = await fx.captioner.caption([fx.pixels[2]!, fx.pixels[3]!, fx.pixels[3]!, fx.pixels[0]!, fx.pixels[2]!], ['seed-x', 'e', 'f', 'g', 'h'], PAPER_CAPTION_OPTIONS);
    expect(other[0]).toBe(alone[0]);
    // Split by maxBatchSize: same captions.
    const small = await loadCaptioner(fx.dir, { maxBatchSize: 2 });
    expect(await small.caption([fx.pixels[0]!, fx.pixels[4]!, fx.pixels[2]!, fx.pixels[1]!, fx.pixels[5]!], ['a', 'b', 'seed-x', 'c', 'd'], PAPER_CAPTION_OPTIONS)).toEqual(batch);
    await small.release();
    // Seeds do matter.
    const seeds = Array.from({ length: 8 }, (_, i) => `seed-${i}`);
    const captions = await fx.captioner.caption(new Array<PixelTensor>(8).fill(fx.pixels[1]!), seeds, PAPER_CAPTION_OPTIONS);
    expect(new Set(captions).size).toBeGreaterThanOrEqual(7);
  });

  it('respects min/max length in tokens and ends rows at EOS independently', async () => {
    await expectLengthBounds(fx.model, fx.pixels, 3);
  });

  it('gives through the KV cache the tokens and logits of a no-cache recompute', async () => {
    const batch = fx.pixels.slice(0, 3);
    const prompt = fx.model.promptIds;
    const cachedTokens = await generateTokens(fx.model, batch, ['kv:0', 'kv:1', 'kv:2'], GREEDY);
    for (let r = 0; r < batch.length; r++) {
      // Greedy again, each step over the whole sequence with empty caches (use_cache_branch = false).
      const seq: number[] = [];
      for (;;) {
        const state = await fx.model.begin([batch[r]!]);
        const { logits } = await state.step([[...prompt, ...seq]]);
        const token = nextToken(logits, { history: [...prompt, ...seq], generated: seq.length, eosIds: fx.model.eosIds, rng: new SeededRng('unused') }, GREEDY);
        if (fx.model.eosIds.includes(token)) break;
        seq.push(token);
        if (seq.length >= GREEDY.maxLength) break;
      }
      expect(seq).toEqual(cachedTokens[r]);
    }

    const tokens = await generateTokens(fx.model, batch, ['kv:0', 'kv:1', 'kv:2'], { ...PAPER_CAPTION_OPTIONS, minLength: 8, maxLength: 8 });
    await expectCacheMatchesRecompute(fx.model, batch, tokens);
  });

  it('drops finished rows from every cache (self-attention, cross-attention, masks)', async () => {
    await expectKeepRowsIsolation(fx.model, fx.pixels, [5, 6, 7], [8, 9]);
  });

  it("has a merged decoder that behaves like Optimum's: encoder K/V once, then read back from the cache", async () => {
    const session = await ort.InferenceSession.create(path.join(fx.dir, 'onnx/decoder_model_merged.onnx'));
    const rng = new SeededRng('merged');
    const rand = (dims: number[]): ort.Tensor => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.nextDouble() * 2 - 1), dims);
    const layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.decoder\.key$/.test(n)).length;
    expect(layers).toBe(2);
    const enc = rand([1, 10, 64]);
    const mask = new ort.Tensor('int64', new BigInt64Array(10).fill(1n), [1, 10]);
    const embeds = rand([1, 3, 64]);
    const rows = (t: ort.Tensor, from: number, to: number): ort.Tensor => new ort.Tensor('float32', (t.data as Float32Array).slice(from * 64, to * 64), [1, to - from, 64]);
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 32]);
    const feeds = (inputs: ort.Tensor, useCache: boolean, past: (name: string) => ort.Tensor, states = enc): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = { inputs_embeds: inputs, encoder_hidden_states: states, encoder_attention_mask: mask, use_cache_branch: new ort.Tensor('bool', Uint8Array.of(useCache ? 1 : 0), [1]) };
      for (let i = 0; i < layers; i++) for (const s of ['decoder', 'encoder']) for (const p of ['key', 'value']) f[`past_key_values.${i}.${s}.${p}`] = past(`past_key_values.${i}.${s}.${p}`);
      return f;
    };
    const run = async (f: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> => (await session.run(f)) as Record<string, ort.Tensor>;
    const first = await run(feeds(rows(embeds, 0, 2), false, () => empty));
    expect(first['present.0.encoder.key']!.dims).toEqual([1, 2, 10, 32]);
    expect(first['present.1.decoder.value']!.dims).toEqual([1, 2, 2, 32]);
    const fromFirst = (name: string): ort.Tensor => first[name.replace('past_key_values', 'present')]!;
    const second = await run(feeds(rows(embeds, 2, 3), true, fromFirst));
    // Cached step: self-attention cache grows, encoder presents are Optimum's empty placeholders.
    expect(second['present.0.decoder.key']!.dims).toEqual([1, 2, 3, 32]);
    expect(second['present.0.encoder.key']!.dims).toEqual([0, 2, 1, 32]);
    const full = await run(feeds(embeds, false, () => empty));
    const last = (t: ort.Tensor): Float32Array => (t.data as Float32Array).slice((t.dims[1]! - 1) * t.dims[2]!);
    expect(maxAbsDiff(last(second['logits']!), last(full['logits']!))).toBeLessThan(1e-4);
    // With cache, encoder_hidden_states are not read; the encoder cache is.
    const otherStates = await run(feeds(rows(embeds, 2, 3), true, fromFirst, rand([1, 10, 64])));
    expect(maxAbsDiff(last(otherStates['logits']!), last(second['logits']!))).toBe(0);
    const otherCache = await run(feeds(rows(embeds, 2, 3), true, (n) => (n.includes('encoder') ? rand([1, 2, 10, 32]) : fromFirst(n))));
    expect(maxAbsDiff(last(otherCache['logits']!), last(second['logits']!))).toBeGreaterThan(1e-2);
    await session.release();
  });

  it('conditions on the task prompt, taken from the folder, and refuses unknown tasks', async () => {
    const greedy: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, temperature: 0 };
    const byTask: string[][] = [];
    for (const task of TASKS) {
      const c = await loadCaptioner(fx.dir, { taskPrompt: task });
      byTask.push(await c.caption(fx.pixels.slice(0, 4), ['t0', 't1', 't2', 't3'], greedy));
      await c.release();
    }
    expect(byTask[0]).toEqual(await fx.captioner.caption(fx.pixels.slice(0, 4), ['t0', 't1', 't2', 't3'], greedy)); // <CAPTION> is the default
    for (let a = 0; a < TASKS.length; a++) for (let b = a + 1; b < TASKS.length; b++) expect(byTask[a]).not.toEqual(byTask[b]);

    // The prompt text comes from preprocessor_config.json's task_prompts_without_inputs.
    const copy = await copyFolder(fx.dir, path.join(fx.scratch, 'prompts'));
    const pre = JSON.parse(await fs.readFile(path.join(copy, 'preprocessor_config.json'), 'utf8')) as { task_prompts_without_inputs: Record<string, string> };
    pre.task_prompts_without_inputs['<CAPTION>'] = pre.task_prompts_without_inputs['<DETAILED_CAPTION>']!;
    await fs.writeFile(path.join(copy, 'preprocessor_config.json'), JSON.stringify(pre));
    const swapped = await loadCaptioner(copy);
    expect(await swapped.caption(fx.pixels.slice(0, 4), ['t0', 't1', 't2', 't3'], greedy)).toEqual(byTask[1]);
    await swapped.release();

    for (const bad of ['<OD>', '<caption>', 'What does the image describe?']) {
      const err = await loadCaptioner(fx.dir, { taskPrompt: bad }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).type).toBe('InvalidConfig');
      for (const task of TASKS) expect((err as Error).message).toContain(task);
    }
  });

  it('refuses broken folders at load, naming the file', async () => {
    const noEmbed = await copyFolder(fx.dir, path.join(fx.scratch, 'no-embed'));
    await fs.rm(path.join(noEmbed, 'onnx/embed_tokens.onnx'));
    await expect(loadCaptioner(noEmbed)).rejects.toThrow(/embed_tokens\.onnx: missing/);
    await expect(loadCaptioner(noEmbed)).rejects.toMatchObject({ type: 'BadModel' });

    const renamed = await copyFolder(fx.dir, path.join(fx.scratch, 'renamed'));
    await editOnnx(path.join(renamed, 'onnx/decoder_model_merged.onnx'), (m) => renameValue(m, 'inputs_embeds', 'decoder_inputs_embeds'));
    const err = await loadCaptioner(renamed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('BadModel');
    expect((err as Error).message).toContain(path.join(renamed, 'onnx/decoder_model_merged.onnx'));
    expect((err as Error).message).toMatch(/missing input 'inputs_embeds'.*unexpected input\(s\).*decoder_inputs_embeds/);

    const layers = await copyFolder(fx.dir, path.join(fx.scratch, 'layers'));
    const config = JSON.parse(await fs.readFile(path.join(layers, 'config.json'), 'utf8')) as { text_config: { decoder_layers: number } };
    config.text_config.decoder_layers = 3;
    await fs.writeFile(path.join(layers, 'config.json'), JSON.stringify(config));
    await expect(loadCaptioner(layers)).rejects.toThrow(/decoder_model_merged\.onnx: has 2 cached layers but config\.json text_config\.decoder_layers says 3/);
  });

  it('runs _fp16 exports whose inputs and outputs are float16', async () => {
    const half = await copyFolder(fx.dir, path.join(fx.scratch, 'fp16'));
    for (const name of ['vision_encoder', 'embed_tokens', 'encoder_model', 'decoder_model_merged']) {
      await editOnnx(path.join(half, `onnx/${name}.onnx`), float16IoDeep, path.join(half, `onnx/${name}_fp16.onnx`));
      await fs.rm(path.join(half, `onnx/${name}.onnx`));
    }
    const fp16 = await loadCaptionModel(half, { dtype: 'fp16' });
    const prompt = [...fp16.promptIds];
    const a = await (await fx.model.begin(fx.pixels.slice(0, 2))).step([prompt, prompt]);
    const b = await (await fp16.begin(fx.pixels.slice(0, 2))).step([prompt, prompt]);
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(0.05);
    const tokens = await generateTokens(fp16, fx.pixels.slice(0, 3), ['h0', 'h1', 'h2'], PAPER_CAPTION_OPTIONS);
    for (const t of tokens) expect(fp16.tokenizer.decode(t).length).toBeGreaterThan(0);
    await fp16.release();
  });

  it('is generated deterministically from its seed', () => {
    const a = tinyFlorence2Files(new WeightInit(new SeededRng('tiny-florence2:0')));
    const b = tinyFlorence2Files(new WeightInit(new SeededRng('tiny-florence2:0')));
    const c = tinyFlorence2Files(new WeightInit(new SeededRng('tiny-florence2:1')));
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const [rel, content] of Object.entries(a)) expect(Buffer.from(b[rel]!).equals(Buffer.from(content))).toBe(true);
    expect(Buffer.from(c['onnx/decoder_model_merged.onnx']!).equals(Buffer.from(a['onnx/decoder_model_merged.onnx']!))).toBe(false);
  });
});
