import * as path from 'node:path';
import { generateSampleData } from '../../lib/sampledata';

export async function sampleDataCommand(opts: { out: string; shards: number; perShard: number; seed: number; corrupt: number; failures: number }): Promise<void> {
  const out = opts.out.startsWith('gs://') ? opts.out : path.resolve(opts.out);
  const s = await generateSampleData({ out, shards: opts.shards, perShard: opts.perShard, seed: opts.seed, corrupt: opts.corrupt, failures: opts.failures });
  process.stdout.write(`wrote ${opts.shards} shards × ${opts.perShard} samples to ${out}\n`);
  void s;
}
