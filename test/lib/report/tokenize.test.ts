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

  it('makes trigrams of consecutive words within one caption', () => {
    expect(trigrams(words('a red car on the street'))).toEqual(['a red car', 'red car on', 'car on the', 'on the street']);
    expect(trigrams(['a', 'b'])).toEqual([]);
    expect(trigrams(['a', 'b', 'c'])).toEqual(['a b c']);
  });
});
