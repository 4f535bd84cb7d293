import { trigrams, words } from '../../../lib/report/tokenize';

describe('report tokenisation', () => {
  it('NFKC-normalises, lower-cases and keeps apostrophes inside words only', () => {
    expect(words("Don't STOP—the café’s 2nd-floor ﬁre! 'quoted' Ｆｕｌｌ")).toEqual([
      "don't",
      'stop',
      'the',
      "café's",
      '2nd',
      'floor',
      'fire',
      'quoted',
      'full',
    ]);
    expect(words('img_0042.jpg')).toEqual(['img', '0042', 'jpg']);
    expect(words('  ... !!! 🙂 ')).toEqual([]);
    expect(words('')).toEqual([]);
    // Combining marks stay in their word (Devanagari vowel signs are \p{M}).
    expect(words('नमस्ते दुनिया')).toEqual(['नमस्ते', 'दुनिया']);
  });

  it('the ASCII fast path gives exactly the general rule', () => {
    const general = (c: string) => [...c.normalize('NFKC').toLowerCase().matchAll(/[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*/gu)].map((m) => m[0]);
    let seed = 7;
    const rnd = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const alphabet = "aZ09 '_-.!?\t\n\"x'y''";
    for (let i = 0; i < 2000; i++) {
      const c = Array.from({ length: Math.floor(rnd() * 30) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
      expect(words(c)).toEqual(general(c));
    }
  });

  it('makes trigrams of consecutive words within one caption', () => {
    expect(trigrams(words('a red car on the street'))).toEqual(['a red car', 'red car on', 'car on the', 'on the street']);
    expect(trigrams(['a', 'b'])).toEqual([]);
    expect(trigrams(['a', 'b', 'c'])).toEqual(['a b c']);
  });
});
