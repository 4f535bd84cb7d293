/**
 * Tokenizer/model mismatches are refused at load, naming tokenizer.json and what does not fit: the pure check,
 * then through the real loaders with the tiny models' folders edited.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import { loadCaptioner } from '../../../lib/models/captioner';
import { loadClip } from '../../../lib/models/clip';
import { checkTokenizerFits } from '../../../lib/models/tokenizer-check';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { loadRefusal } from './load-refusal';
import { copyFolder } from './onnx-edit';

const refusal = (fn: () => void): InputError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

async function editJson(file: string, edit: (json: Record<string, any>) => void): Promise<void> {
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, any>;
  edit(json);
  await fs.writeFile(file, JSON.stringify(json));
}

describe('checkTokenizerFits', () => {
  const file = '/m/tokenizer.json';

  it('accepts a tokenizer within every declared vocabulary and ids inside it', () => {
    expect(() =>
      checkTokenizerFits({ maxId: 455, modelMaxLength: 77 }, { vocab: [[456, 'logits'], [undefined, 'config.json vocab_size'], [50_000, 'embedding']], ids: { eos_token_id: [455], pad: null }, positions: [77, 'config.json'] }, file),
    ).not.toThrow();
  });

  it('names the file and every mismatch at once', () => {
    const err = refusal(() =>
      checkTokenizerFits({ maxId: 500, modelMaxLength: 100 }, { vocab: [[456, 'decoder logits']], ids: { decoder_start_token_id: 456, eos_token_id: [3, -1] }, positions: [77, 'max_position_embeddings'] }, file),
    );
    expect(err.type).toBe('BadModel');
    expect(err.message).toMatch(/^\/m\/tokenizer\.json: does not match the model: /);
    expect(err.message).toContain("the tokenizer has ids up to 500 but the model's vocabulary has 456 entries (decoder logits)");
    expect(err.message).toContain("decoder_start_token_id 456 is outside the model's vocabulary of 456 (decoder logits)");
    expect(err.message).toContain('eos_token_id -1 is not a valid token id');
    expect(err.message).toContain("model_max_length 100 exceeds the text model's 77 position embeddings (max_position_embeddings)");
  });

  it('checks special ids against the smallest declared vocabulary', () => {
    const err = refusal(() => checkTokenizerFits({ maxId: 10 }, { vocab: [[1000, 'logits'], [300, 'config.json vocab_size']], ids: { eos_token_id: 500 } }, file));
    expect(err.message).toContain("eos_token_id 500 is outside the model's vocabulary of 300 (config.json vocab_size)");
  });
});

describe('tokenizer checks in the loaders', () => {
  const root = tempDir('recaption-tokcheck-');
  let n = 0;
  const copy = (from: string): Promise<string> => copyFolder(from, path.join(root, `m${n++}`));
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('loads the tiny models, whose tokenizers fit', async () => {
    await (await loadCaptioner(TINY_CAPTIONER)).release();
    await (await loadClip(TINY_CLIP)).release();
  });

  it('refuses a captioner tokenizer with more ids than the decoder has logits', async () => {
    const dir = await copy(TINY_CAPTIONER);
    // One added token past GPT-2's 456-entry vocabulary (ids 0..455).
    await editJson(path.join(dir, 'tokenizer.json'), (t) => {
      t.added_tokens.push({ id: 456, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    });
    const err = await loadRefusal(loadCaptioner(dir));
    expect(err.type).toBe('BadModel');
    expect(err.message).toContain(`${path.join(dir, 'tokenizer.json')}: does not match the model`);
    expect(err.message).toContain(`ids up to 456 but the model's vocabulary has 456 entries (${path.join(dir, 'onnx/decoder_model_merged.onnx')} logits)`);
  });

  it('refuses an EOS or decoder start id outside the vocabulary', async () => {
    const dir = await copy(TINY_CAPTIONER);
    await editJson(path.join(dir, 'generation_config.json'), (g) => {
      g.eos_token_id = 456;
      g.decoder_start_token_id = 9999;
    });
    const err = await loadRefusal(loadCaptioner(dir));
    expect(err.message).toContain(path.join(dir, 'tokenizer.json'));
    expect(err.message).toContain("eos_token_id 456 is outside the model's vocabulary of 456");
    expect(err.message).toContain('decoder_start_token_id 9999 is outside');
  });

  it("refuses a captioner whose config vocab_size is smaller than the tokenizer's", async () => {
    const dir = await copy(TINY_CAPTIONER);
    await editJson(path.join(dir, 'config.json'), (c) => (c.decoder.vocab_size = 400));
    const err = await loadRefusal(loadCaptioner(dir));
    expect(err.message).toContain(`has 400 entries (${path.join(dir, 'config.json')} decoder.vocab_size)`);
  });

  it('refuses a CLIP tokenizer larger than text_config.vocab_size', async () => {
    const dir = await copy(TINY_CLIP);
    await editJson(path.join(dir, 'config.json'), (c) => (c.text_config.vocab_size = 600));
    const err = await loadRefusal(loadClip(dir));
    expect(err.message).toContain(`${path.join(dir, 'tokenizer.json')}: does not match the model`);
    expect(err.message).toContain('ids up to 688');
    expect(err.message).toContain('text_config.vocab_size');
  });

  it("refuses a CLIP tokenizer whose model_max_length exceeds the text model's positions", async () => {
    const dir = await copy(TINY_CLIP);
    await editJson(path.join(dir, 'tokenizer_config.json'), (c) => (c.model_max_length = 100));
    const err = await loadRefusal(loadClip(dir));
    expect(err.message).toContain(path.join(dir, 'tokenizer.json'));
    expect(err.message).toContain("model_max_length 100 exceeds the text model's 77 position embeddings");
  });

  it("treats HF's 1e30 model_max_length as unset", async () => {
    const dir = await copy(TINY_CLIP);
    await editJson(path.join(dir, 'tokenizer_config.json'), (c) => (c.model_max_length = 1e30));
    await (await loadClip(dir)).release();
  });
});
