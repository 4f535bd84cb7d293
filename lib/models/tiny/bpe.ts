/**
 * Byte-level BPE for the tiny tokenizers: GPT-2's byte<->unicode alphabet, deterministic merge learning over a
 * word-frequency table, and the public tokenizer.json layouts (CLIP; GPT-2, BART, OPT) built from the result.
 */

/** GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to code points from 256 upward. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (printable.includes(b)) table[b] = String.fromCodePoint(b);
    else table[b] = String.fromCodePoint(256 + extra++);
  }
  return table;
}

const BYTE_CHARS = bytesToUnicode();

/** A pre-token as byte-level symbols (one per UTF-8 byte). */
export function byteSymbols(word: string): string[] {
  return Array.from(Buffer.from(word, 'utf8'), (b) => BYTE_CHARS[b]!);
}

/**
 * Learns up to `numMerges` merges: repeatedly merge the most frequent adjacent pair (ties broken by the pair's
 * string order, so the result never depends on Map iteration order or platform).
 */
export function learnMerges(words: Map<string[], number>, numMerges: number): [string, string][] {
  const entries = [...words.entries()].map(([symbols, count]) => ({ symbols: [...symbols], count }));
  const merges: [string, string][] = [];
  for (let m = 0; m < numMerges; m++) {
    const counts = new Map<string, number>();
    for (const { symbols, count } of entries) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1; // a pair seen once is not worth a merge
    for (const [key, c] of counts) {
      if (c > bestCount || (c === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    for (const entry of entries) {
      const out: string[] = [];
      for (let i = 0; i < entry.symbols.length; i++) {
        if (i + 1 < entry.symbols.length && entry.symbols[i] === a && entry.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(entry.symbols[i]!);
      }
      entry.symbols = out;
    }
  }
  return merges;
}

function countWords(words: string[], toSymbols: (w: string) => string[]): Map<string[], number> {
  const byKey = new Map<string, { symbols: string[]; count: number }>();
  for (const w of words) {
    const e = byKey.get(w) ?? { symbols: toSymbols(w), count: 0 };
    e.count += 1;
    byKey.set(w, e);
  }
  return new Map([...byKey.values()].map((e) => [e.symbols, e.count]));
}

/** OpenAI CLIP's pre-tokenisation pattern (as in the public CLIP tokenizer.json). */
export const CLIP_SPLIT_REGEX = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
/** GPT-2's pre-tokenisation pattern (applied by its ByteLevel pre-tokenizer with use_regex). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function addedToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

export interface BuiltTokenizer {
  /** tokenizer.json contents */
  json: Record<string, unknown>;
  vocabSize: number;
  vocab: Record<string, number>;
  /** ids of the special tokens by content */
  special: Record<string, number>;
}

/**
 * CLIP-style tokenizer: NFC + whitespace collapse + lowercase, CLIP regex split then ByteLevel (no regex),
 * BPE with `</w>` end-of-word suffix, vocab = 256 bytes, 256 bytes+`</w>`, merges, then
 * `<|startoftext|>` and `<|endoftext|>` (the highest id = EOS, like OpenAI CLIP).
 */
export function buildClipTokenizer(corpus: readonly string[], numMerges: number): BuiltTokenizer {
  const splitter = new RegExp(CLIP_SPLIT_REGEX, 'gu');
  const words = corpus.flatMap((s) => s.normalize('NFC').replace(/\s+/g, ' ').toLowerCase().match(splitter) ?? []);
  const merges = learnMerges(
    countWords(words, (w) => {
      const sym = byteSymbols(w);
      sym[sym.length - 1] += '</w>';
      return sym;
    }),
    numMerges,
  );
  const vocab: Record<string, number> = {};
  const add = (t: string): void => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  BYTE_CHARS.forEach(add);
  BYTE_CHARS.forEach((c) => add(`${c}</w>`));
  merges.forEach(([a, b]) => add(a + b));
  const bos = Object.keys(vocab).length;
  const eos = bos + 1;
  vocab['<|startoftext|>'] = bos;
  vocab['<|endoftext|>'] = eos;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(bos, '<|startoftext|>'), addedToken(eos, '<|endoftext|>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_REGEX }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|startoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<|startoftext|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|endoftext|>', type_id: 0 } },
        { SpecialToken: { id: '<|startoftext|>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '<|endoftext|>', type_id: 0 } },
      ],
      special_tokens: {
        '<|startoftext|>': { id: '<|startoftext|>', ids: [bos], tokens: ['<|startoftext|>'] },
        '<|endoftext|>': { id: '<|endoftext|>', ids: [eos], tokens: ['<|endoftext|>'] },
      },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|endoftext|>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { json, vocabSize: eos + 1, vocab, special: { '<|startoftext|>': bos, '<|endoftext|>': eos } };
}

/** Vocabulary order and post-processor of one byte-level BPE tokenizer.json layout (GPT-2, BART, OPT). */
interface ByteLevelLayout {
  /** special tokens before the 256 bytes (fairseq's `<s>`, `<pad>`, `</s>`, `<unk>`) */
  leading: readonly string[];
  /** special tokens after the merges (GPT-2's `<|endoftext|>`, BART's `<mask>`) */
  trailing: readonly string[];
  postProcessor: (special: Record<string, number>) => unknown;
}

/** GPT-2's byte-level BPE learnt on `corpus`, laid out as tokenizer.json the way `layout` says. */
function buildByteLevelBpe(corpus: readonly string[], numMerges: number, layout: ByteLevelLayout): BuiltTokenizer {
  const words = corpus.flatMap((s) => s.match(GPT2_SPLIT) ?? []);
  const merges = learnMerges(countWords(words, byteSymbols), numMerges);
  const vocab: Record<string, number> = {};
  const add = (t: string): void => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  layout.leading.forEach(add);
  BYTE_CHARS.forEach(add);
  merges.forEach(([a, b]) => add(a + b));
  layout.trailing.forEach(add);
  const special = Object.fromEntries([...layout.leading, ...layout.trailing].map((t) => [t, vocab[t]!]));
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(special).map(([content, id]) => addedToken(id, content)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: layout.postProcessor(special),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { json, vocabSize: Object.keys(vocab).length, vocab, special };
}

const FAIRSEQ_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'];

/**
 * GPT-2-style tokenizer: ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), byte-level BPE, ByteLevel
 * decoder, vocab = 256 bytes, merges, then `<|endoftext|>` as the last id.
 */
export function buildGpt2Tokenizer(corpus: readonly string[], numMerges: number): BuiltTokenizer {
  return buildByteLevelBpe(corpus, numMerges, {
    leading: [],
    trailing: ['<|endoftext|>'],
    postProcessor: () => ({ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }),
  });
}

/**
 * BART-style tokenizer (Florence-2's): GPT-2's byte-level BPE, with BART's vocab order `<s>` 0, `<pad>` 1,
 * `</s>` 2, `<unk>` 3, then bytes and merges, `<mask>` last; RobertaProcessing wraps text as `<s> … </s>`.
 */
export function buildBartTokenizer(corpus: readonly string[], numMerges: number): BuiltTokenizer {
  return buildByteLevelBpe(corpus, numMerges, {
    leading: FAIRSEQ_SPECIALS,
    trailing: ['<mask>'],
    postProcessor: (special) => ({ type: 'RobertaProcessing', sep: ['</s>', special['</s>']], cls: ['<s>', special['<s>']], trim_offsets: true, add_prefix_space: false }),
  });
}

/**
 * OPT-style tokenizer (BLIP-2 OPT's): GPT-2's byte-level BPE with fairseq's `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3
 * in front, then bytes and merges. Like OPT's tokenizer.json, a template prepends `</s>` (OPT's BOS) to every text
 * and appends nothing; BLIP-2 ends captions at the newline byte token `Ċ` instead (OPT's id 50118).
 */
export function buildOptTokenizer(corpus: readonly string[], numMerges: number): BuiltTokenizer {
  return buildByteLevelBpe(corpus, numMerges, {
    leading: FAIRSEQ_SPECIALS,
    trailing: [],
    postProcessor: (special) => ({
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [special['</s>']], tokens: ['</s>'] } },
    }),
  });
}
