/**
 * Raw captions of mixed quality, like web alt-text: some describe the image, many do not. This is the
 * noise the paper's synthetic captions are meant to fix, so the sample data needs all kinds.
 */
import type { Rng } from './random';
import { describeScene, type Scene } from './scenes';

export type CaptionKind = 'accurate' | 'vague' | 'junk' | 'empty';

/** Share of each kind (roughly what a web crawl's alt-text looks like after DataComp's pool filtering). */
export const CAPTION_KIND_WEIGHTS: ReadonlyArray<readonly [CaptionKind, number]> = [
  ['accurate', 45],
  ['vague', 20],
  ['junk', 25],
  ['empty', 10],
];

const VAGUE = [
  'nice picture',
  'my favourite',
  'look at this',
  'beautiful',
  'best day ever',
  'so cool',
  'check it out',
  'wow',
  'love it',
  'new arrivals',
] as const;

const JUNK: ReadonlyArray<(rng: Rng) => string> = [
  (rng) => `IMG_${rng.int(1000, 9999)}.jpg`,
  () => 'click here',
  () => 'image',
  (rng) => `DSC${String(rng.int(0, 99999)).padStart(5, '0')}`,
  () => 'untitled',
  () => 'thumbnail',
  (rng) => `${rng.bytes(6).toString('hex')}.png`,
  () => 'Image may contain: text',
  (rng) => `photo ${rng.int(1, 300)} of ${rng.int(300, 900)}`,
];

export function captionFor(rng: Rng, scene: Scene, kind: CaptionKind): string {
  switch (kind) {
    case 'accurate': {
      const d = describeScene(scene);
      // A few phrasings, as real alt-text varies; all name every shape, colour and the background.
      return rng.pick([d, `photo of ${d}`, `${d[0].toUpperCase()}${d.slice(1)}.`, `illustration: ${d}`]);
    }
    case 'vague':
      return rng.pick(VAGUE);
    case 'junk':
      return rng.pick(JUNK)(rng);
    case 'empty':
      return '';
  }
}
