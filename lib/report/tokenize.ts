/**
 * The tokenisation behind every text-diversity number of the report (the paper counts unique words and unique
 * word trigrams but does not say how it tokenises, so this is ours, stated once here and in the report):
 *
 *   1. Unicode NFKC normalisation, then `toLowerCase()` (locale-independent);
 *   2. words = maximal runs of letters, marks and digits (`[\p{L}\p{M}\p{N}]+`), where an apostrophe (' or ’)
 *      BETWEEN two such runs stays inside the word ("don't", "o’neil" → "o'neil"); every other character
 *      (spaces, punctuation, symbols, emoji) separates words;
 *   3. trigrams = every run of three consecutive words WITHIN one caption (never across captions), joined by a
 *      single space; a caption of n words has max(n - 2, 0) trigrams.
 *
 * Caption length, everywhere in the report, is the number of words under this rule.
 */

export const TOKENIZATION =
  "NFKC, lower-case; words = /[\\p{L}\\p{M}\\p{N}]+(?:['’][\\p{L}\\p{M}\\p{N}]+)*/gu (apostrophes kept inside words, as '); " +
  'trigrams = consecutive word triples within one caption';

const WORD = /[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu;
/** The same rule restricted to ASCII (NFKC is the identity there, and ’ cannot occur): a faster path. */
const ASCII = /^[\x00-\x7f]*$/;
const ASCII_WORD = /[a-z0-9]+(?:'[a-z0-9]+)*/g;

/** The words of a caption, normalised (see the module comment). */
export function words(caption: string): string[] {
  if (ASCII.test(caption)) return caption.toLowerCase().match(ASCII_WORD) ?? [];
  const text = caption.normalize('NFKC').toLowerCase();
  const out: string[] = [];
  for (const m of text.matchAll(WORD)) out.push(m[0].replace(/’/g, "'"));
  return out;
}

/** Consecutive word triples of one caption's words, each joined by a single space. */
export function trigrams(ws: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 2 < ws.length; i++) out.push(`${ws[i]} ${ws[i + 1]} ${ws[i + 2]}`);
  return out;
}
