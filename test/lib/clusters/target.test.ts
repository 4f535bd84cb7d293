import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../../lib/errors';
import { NearestCentroid } from '../../../lib/clusters/nearest';
import { encodeIntVector, readIntVector } from '../../../lib/formats/npy';
import { inTargetClusters, readTargetList, targetClusters, writeTargetList } from '../../../lib/clusters/target';
import { tempDir } from '../../helpers/paths';

/** Six centroids in 2-D at 60° steps: centroid j points at angle 60°·j. */
function hexCentroids(): Float32Array {
  const c = new Float32Array(12);
  for (let j = 0; j < 6; j++) {
    c[2 * j] = Math.cos((j * Math.PI) / 3);
    c[2 * j + 1] = Math.sin((j * Math.PI) / 3);
  }
  return c;
}

/** Unit vectors at the given angles (degrees). */
function at(...degrees: number[]): Float32Array {
  return Float32Array.from(degrees.flatMap((a) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)]));
}

describe('image-cluster filter', () => {
  it('computes the target set and keep mask on a hand-built example', async () => {
    const nc = await NearestCentroid.create(hexCentroids(), 6, 2, { chunkRows: 2 });
    // reference ("ImageNet") embeddings near 0°, 10°, 125° and 170°: nearest centroids 0, 0, 2, 3
    const reference = at(0, 10, 125, 170);
    const target = await targetClusters(reference, 4, nc, { batchRows: 3 });
    expect([...target].sort()).toEqual([0, 2, 3]);

    // pool samples at 350°, 65°, 110°, 185°, 240°, 300°: nearest 0, 1, 2, 3, 4, 5
    const assignments = await nc.assign(at(350, 65, 110, 185, 240, 300), 6);
    expect(Array.from(assignments)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(assignments, (a) => inTargetClusters(a, target))).toEqual([true, false, true, true, false, false]);
    expect(inTargetClusters(null, target)).toBe(false); // no embedding, no cluster
    await nc.release();
  });

  it('reports progress per batch and rejects a reference of the wrong size', async () => {
    const nc = await NearestCentroid.create(hexCentroids(), 6, 2);
    const seen: number[] = [];
    await targetClusters(at(0, 60, 120, 180, 240), 5, nc, { batchRows: 2, onProgress: (done) => seen.push(done) });
    expect(seen).toEqual([2, 4, 5]);
    await expect(targetClusters(new Float32Array(3), 2, nc)).rejects.toThrow(InputError);
    await nc.release();
  });

  it('reads target lists as .npy (int64/int32) or text, and writes a sorted int64 .npy', async () => {
    const dir = tempDir();
    const npy8 = path.join(dir, 't8.npy');
    const npy4 = path.join(dir, 't4.npy');
    const txt = path.join(dir, 't.txt');
    writeFileSync(npy8, encodeIntVector([7, 3, 3, 99_999]));
    writeFileSync(npy4, encodeIntVector([1, 2], '<i4'));
    writeFileSync(txt, '# in1k target\n5\n\n 12 \r\n5\n');
    expect([...(await readTargetList(npy8))].sort((a, b) => a - b)).toEqual([3, 7, 99_999]);
    expect([...(await readTargetList(npy4))]).toEqual([1, 2]);
    expect([...(await readTargetList(txt))].sort((a, b) => a - b)).toEqual([5, 12]);

    const out = path.join(dir, 'out', 'target.npy');
    await writeTargetList(out, new Set([42, 7, 100, 7]));
    expect(await readIntVector(out)).toEqual([7, 42, 100]);
  });

  it('rejects bad target lists naming the file', async () => {
    const dir = tempDir();
    const txt = path.join(dir, 'bad.txt');
    writeFileSync(txt, '1\n2\nthree\n');
    await expect(readTargetList(txt)).rejects.toThrow(/bad\.txt: line 3: expected a non-negative integer/);
    const neg = path.join(dir, 'neg.npy');
    writeFileSync(neg, encodeIntVector([1, -4]));
    await expect(readTargetList(neg)).rejects.toThrow(/neg\.npy: centroid id -4 out of range/);
    const big = path.join(dir, 'big.txt');
    writeFileSync(big, '10\n');
    await expect(readTargetList(big, { k: 10 })).rejects.toThrow(/big\.txt: centroid id 10 out of range \[0, 10\)/);
    const f4 = path.join(dir, 'floats.npy');
    writeFileSync(f4, Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0x36, 0]), Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }".padEnd(53, ' ') + '\n')]));
    await expect(readTargetList(f4)).rejects.toMatchObject({ type: 'BadNpy', message: expect.stringContaining('floats.npy') });
  });
});
