/** `recaption image-clusters-target` as a process: the clusters hit by reference embeddings, as a .npy list. */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeIntVector, encodeFloatMatrix } from '../../lib/formats/npy';
import { runCli } from '../helpers/cli';
import { tempDir } from '../helpers/paths';

it('writes the set of centroids nearest to the reference embeddings', async () => {
  const dir = tempDir();
  // 3 centroids on the axes of a 4-d space; references point near centroids 0 and 2 only
  const c = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  const ref = new Float32Array([0.9, 0.1, 0, 0, 0.2, 0, 0.95, 0.1, 0.8, 0.3, 0.1, 0]);
  writeFileSync(path.join(dir, 'c.npy'), encodeFloatMatrix(c, 3, 4));
  writeFileSync(path.join(dir, 'ref.npy'), encodeFloatMatrix(ref, 3, 4));
  const r = await runCli(['image-clusters-target', '--centroids', path.join(dir, 'c.npy'), '--reference', path.join(dir, 'ref.npy'), '--out', path.join(dir, 't.npy')]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('2 of 3 clusters hit by 3 reference embeddings');
  expect(decodeIntVector(await readFile(path.join(dir, 't.npy')))).toEqual([0, 2]);
});
