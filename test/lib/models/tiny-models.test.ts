import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateTinyModels, TINY_GENERATOR_VERSION } from '../../../lib/models/tiny/generate';
import { tempDir } from '../../helpers/paths';

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('tiny model generator', () => {
  const root = tempDir('recaption-tiny-');
  let first: { clipDir: string; captionerDir: string };

  beforeAll(async () => {
    first = await generateTinyModels(path.join(root, 'a'));
  });
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('is deterministic: the same seed writes byte-identical folders', async () => {
    const second = await generateTinyModels(path.join(root, 'b'));
    for (const [a, b] of [
      [first.clipDir, second.clipDir],
      [first.captionerDir, second.captionerDir],
    ] as const) {
      const files = await listFiles(a);
      expect(await listFiles(b)).toEqual(files);
      for (const f of files) expect((await fs.readFile(path.join(b, f))).equals(await fs.readFile(path.join(a, f)))).toBe(true);
    }
  });

  it('gives different weights for a different seed', async () => {
    const other = await generateTinyModels(path.join(root, 'c'), { seed: 7 });
    const a = await fs.readFile(path.join(first.clipDir, 'onnx/vision_model.onnx'));
    const b = await fs.readFile(path.join(other.clipDir, 'onnx/vision_model.onnx'));
    expect(a.equals(b)).toBe(false);
  });

  it('skips regeneration when the stamp matches, regenerates when a file is gone', async () => {
    const file = path.join(first.clipDir, 'onnx/text_model.onnx');
    const before = (await fs.stat(file)).mtimeMs;
    const started = Date.now();
    await generateTinyModels(path.join(root, 'a'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await fs.stat(file)).mtimeMs).toBe(before);
    const stamp = JSON.parse(await fs.readFile(path.join(first.clipDir, 'recaption-tiny.json'), 'utf8')) as { version: number };
    expect(stamp.version).toBe(TINY_GENERATOR_VERSION);

    await fs.rm(path.join(first.captionerDir, 'onnx/encoder_model.onnx'));
    await generateTinyModels(path.join(root, 'a'));
    await expect(fs.stat(path.join(first.captionerDir, 'onnx/encoder_model.onnx'))).resolves.toBeTruthy();
  });

  it('writes the public export layouts with the exact Optimum I/O names, each model a few MB at most', async () => {
    const io = async (rel: string, dir: string): Promise<{ inputs: string[]; outputs: string[]; meta: ort.InferenceSession['inputMetadata'] }> => {
      const s = await ort.InferenceSession.create(path.join(dir, rel));
      const r = { inputs: [...s.inputNames], outputs: [...s.outputNames], meta: s.inputMetadata };
      await s.release();
      return r;
    };
    expect(await io('onnx/vision_model.onnx', first.clipDir)).toMatchObject({ inputs: ['pixel_values'], outputs: expect.arrayContaining(['image_embeds', 'last_hidden_state']) });
    expect(await io('onnx/text_model.onnx', first.clipDir)).toMatchObject({ inputs: ['input_ids'], outputs: expect.arrayContaining(['text_embeds', 'last_hidden_state']) });
    expect(await io('onnx/encoder_model.onnx', first.captionerDir)).toMatchObject({ inputs: ['pixel_values'], outputs: ['last_hidden_state'] });

    const config = JSON.parse(await fs.readFile(path.join(first.captionerDir, 'config.json'), 'utf8')) as { decoder: { n_layer: number; n_head: number; n_embd: number } };
    const dec = await io('onnx/decoder_model_merged.onnx', first.captionerDir);
    const past = Array.from({ length: config.decoder.n_layer }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat();
    expect(dec.inputs).toEqual(['input_ids', 'encoder_hidden_states', ...past, 'use_cache_branch']);
    expect(dec.outputs.sort()).toEqual(['logits', ...past.map((n) => n.replace('past_key_values', 'present'))].sort());
    const kv = dec.meta.find((m) => m.name === 'past_key_values.0.key');
    expect(kv).toMatchObject({ type: 'float32', shape: ['batch_size', config.decoder.n_head, 'past_decoder_sequence_length', config.decoder.n_embd / config.decoder.n_head] });
    expect(dec.meta.find((m) => m.name === 'use_cache_branch')).toMatchObject({ type: 'bool', shape: [1] });

    for (const dir of [first.clipDir, first.captionerDir]) {
      for (const f of await listFiles(dir)) expect((await fs.stat(path.join(dir, f))).size).toBeLessThan(4 * 1024 * 1024);
    }
  });

  it('writes configs and tokenizers like the public exports', async () => {
    const clipConfig = JSON.parse(await fs.readFile(path.join(first.clipDir, 'config.json'), 'utf8'));
    expect(clipConfig).toMatchObject({ model_type: 'clip', text_config: { max_position_embeddings: 77 }, vision_config: { image_size: 224, patch_size: 32 } });
    const pre = JSON.parse(await fs.readFile(path.join(first.clipDir, 'preprocessor_config.json'), 'utf8'));
    expect(pre).toMatchObject({
      do_resize: true,
      size: { shortest_edge: 224 },
      resample: 3,
      do_center_crop: true,
      crop_size: { height: 224, width: 224 },
      do_normalize: true,
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      do_convert_rgb: true,
    });
    const tok = JSON.parse(await fs.readFile(path.join(first.clipDir, 'tokenizer.json'), 'utf8'));
    const vocab = tok.model.vocab as Record<string, number>;
    expect(tok.model).toMatchObject({ type: 'BPE', end_of_word_suffix: '</w>' });
    expect(vocab['<|endoftext|>']).toBe(Math.max(...Object.values(vocab)));
    expect(clipConfig.text_config.eos_token_id).toBe(vocab['<|endoftext|>']);

    const ved = JSON.parse(await fs.readFile(path.join(first.captionerDir, 'config.json'), 'utf8'));
    expect(ved).toMatchObject({ model_type: 'vision-encoder-decoder', encoder: { model_type: 'vit', image_size: 224, patch_size: 32 }, decoder: { model_type: 'gpt2', n_layer: 2, n_head: 2 } });
    const gtok = JSON.parse(await fs.readFile(path.join(first.captionerDir, 'tokenizer.json'), 'utf8'));
    expect(gtok.pre_tokenizer.type).toBe('ByteLevel');
    expect(gtok.decoder.type).toBe('ByteLevel');
    expect(gtok.model.vocab['<|endoftext|>']).toBe(ved.decoder.eos_token_id);
    expect(ved.decoder.vocab_size).toBe(Object.keys(gtok.model.vocab).length);
  });
});
