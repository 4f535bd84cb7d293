/**
 * Texts tokenised once for a whole batch (lib/models/text-batch.ts) — as the annotate stage's prep threads do — give
 * a text tower the inputs, and so the embeddings, of tokenising each part it runs on its own.
 */
import { loadClip } from '../../../lib/models/clip';
import { jsonFolder } from '../../../lib/models/json-folder';
import { encodeTexts, tokenRows } from '../../../lib/models/text-batch';
import { TextTokenizer } from '../../../lib/models/tokenizer';
import { TINY_CLIP } from '../../helpers/paths';

const TEXTS = ['a red circle', 'two small blue squares next to a large green triangle on a white background', '', 'cat', 'a photo of a dog running on the beach at sunset'];

describe('token batches', () => {
  it('splits a batch into parts padded as if tokenised alone (views when the length is the same)', async () => {
    const tok = await TextTokenizer.load(jsonFolder(TINY_CLIP));
    const recipe = { maxLength: 77 };
    const all = encodeTexts(tok, TEXTS, recipe);
    for (const [from, to] of [[0, 2], [2, 3], [3, 5], [0, 5]] as const) {
      expect(tokenRows(all, from, to)).toEqual(encodeTexts(tok, TEXTS.slice(from, to), recipe));
    }
    expect(tokenRows(all, 0, 2).ids.buffer).toBe(all.ids.buffer); // the longest text is in [0, 2): no copy
    // padded to a fixed length (SigLIP) the parts keep it
    const fixed = encodeTexts(tok, TEXTS, { maxLength: 77, padTo: 77 });
    expect(tokenRows(fixed, 3, 5, 77)).toEqual(encodeTexts(tok, TEXTS.slice(3, 5), { maxLength: 77, padTo: 77 }));
  });

  it('embeds pre-tokenised texts as the scorer embeds the texts, across its batch splits', async () => {
    const clip = await loadClip(TINY_CLIP, { maxBatchSize: 2 });
    try {
      const alone = await Promise.all(TEXTS.map(async (t) => (await clip.embedTexts([t]))[0]!));
      expect(await clip.embedTokens(encodeTexts(await TextTokenizer.load(jsonFolder(TINY_CLIP)), TEXTS, clip.textRecipe))).toEqual(alone);
      expect(await clip.embedTexts(TEXTS)).toEqual(alone);
    } finally {
      await clip.release();
    }
  });
});
