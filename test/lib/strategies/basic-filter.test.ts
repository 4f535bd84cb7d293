/** DataComp's basic filter, rule by rule, with the real CLD3 language identifier. */
import { basicFilterReason } from '../../../lib/strategies/basic-filter';
import { detectLanguage } from '../../../lib/strategies/language-id';

const ok = { width: 640, height: 480 };

describe('basic filter', () => {
  it('identifies caption languages with CLD3', async () => {
    expect(await detectLanguage('a red circle and a blue square on a yellow background')).toBe('en');
    expect(await detectLanguage('ein roter Kreis und ein blaues Quadrat auf gelbem Hintergrund')).toBe('de');
    expect(await detectLanguage('un cercle rouge et un carré bleu sur un fond jaune')).toBe('fr');
    expect(await detectLanguage('   ')).toBe('und');
  });

  it('keeps an English caption of > 2 words and > 5 chars on an image >= 200 px with aspect <= 3', async () => {
    expect(await basicFilterReason({ caption: 'a dog running on the beach', ...ok })).toBeNull();
    expect(await basicFilterReason({ caption: 'a dog running on the beach', width: 600, height: 200 })).toBeNull(); // aspect exactly 3
  });

  it('drops each rule with its own reason', async () => {
    expect(await basicFilterReason({ caption: 'click here', ...ok })).toBe('basic_filter:few_words');
    expect(await basicFilterReason({ caption: 'a b c', ...ok })).toBe('basic_filter:short_caption');
    expect(await basicFilterReason({ caption: 'a dog running on the beach', width: 640, height: 199 })).toBe('basic_filter:small_image');
    expect(await basicFilterReason({ caption: 'a dog running on the beach', width: 1210, height: 400 })).toBe('basic_filter:aspect_ratio');
    expect(await basicFilterReason({ caption: 'ein Hund läuft am Strand entlang', ...ok })).toBe('basic_filter:not_english');
  });

  it('skips the size rules when the original size is unknown', async () => {
    expect(await basicFilterReason({ caption: 'a dog running on the beach', width: null, height: null })).toBeNull();
  });
});
