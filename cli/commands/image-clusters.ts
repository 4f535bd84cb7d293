import * as path from 'node:path';
import { NearestCentroid, targetClusters, writeTargetList } from '../../lib/clusters';
import { readFloatMatrix } from '../../lib/formats/npy';

export interface ImageClustersOptions {
  centroids: string;
  reference: string;
  out: string;
  device: string;
  centroidNorm: 'as-is' | 'l2';
}

const abs = (u: string) => (u.startsWith('gs://') ? u : path.resolve(u));

/**
 * `recaption image-clusters-target`: the target set of DataComp's image-based filter — the centroids hit by a
 * reference set's embeddings (e.g. ImageNet-1k L/14 features) — computed once and saved as an int64 `.npy`
 * for `filters.imageCluster.target`. Heavy at full scale (1.28M × 100k): run it where a GPU is (--device cuda:0).
 */
export async function imageClustersTargetCommand(opts: ImageClustersOptions): Promise<void> {
  const nc = await NearestCentroid.fromNpy(abs(opts.centroids), { device: opts.device as 'cpu', centroidNorm: opts.centroidNorm });
  try {
    const ref = await readFloatMatrix(abs(opts.reference));
    let last = 0;
    const target = await targetClusters(ref.data, ref.rows, nc, {
      onProgress: (done: number) => {
        if (process.stderr.isTTY && Date.now() - last > 1000) {
          last = Date.now();
          process.stderr.write(`\r${done}/${ref.rows} reference rows`);
        }
      },
    });
    await writeTargetList(abs(opts.out), target);
    process.stdout.write(`${target.size} of ${nc.k} clusters hit by ${ref.rows} reference embeddings → ${abs(opts.out)}\n`);
  } finally {
    await nc.release();
  }
}
