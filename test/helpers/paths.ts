import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const TINY_MODELS = path.join(REPO_ROOT, '.cache', 'models');
export const TINY_CLIP = path.join(TINY_MODELS, 'tiny-clip');
export const TINY_CAPTIONER = path.join(TINY_MODELS, 'tiny-vit-gpt2');

export function tempDir(prefix = 'recaption-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}
export const TINY_FLORENCE2 = path.join(TINY_MODELS, 'tiny-florence2');
export const TINY_BLIP2 = path.join(TINY_MODELS, 'tiny-blip2');
export const TINY_CLIP_JOINT = path.join(TINY_MODELS, 'tiny-clip-joint');
