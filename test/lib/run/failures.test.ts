/** Which recorded shard failures a new execution retries (clears) and which it keeps, on real files. */
import * as path from 'node:path';
import { keptFailure, pendingRetry, readShardFailures, recordShardFailure, retryFailedShards } from '../../../lib/run/failures';
import { RunLayout } from '../../../lib/run/layout';
import { storageFor } from '../../../lib/storage';
import { tempDir } from '../../helpers/paths';

function run() {
  const layout = new RunLayout(path.join(tempDir(), 'run'));
  return { layout, storage: storageFor(layout.runUri) };
}

describe('retrying failed shards', () => {
  it('clears every failure before the thresholds are computed: all their shards run again', async () => {
    const { layout, storage } = run();
    await recordShardFailure(storage, layout, 'annotate', { shard: '00000001', type: 'CorruptShard', message: 'truncated' });
    await recordShardFailure(storage, layout, 'select', { shard: '00000002', type: 'PermissionDenied', message: 'denied' });
    const done = await retryFailedShards(storage, layout);
    expect(done.retry.map((f) => f.shard).sort()).toEqual(['00000001', '00000002']);
    expect(done.keep).toEqual([]);
    expect(await readShardFailures(storage, layout)).toEqual([]);
  });

  it('keeps (and marks) an annotate failure once the pool-wide thresholds exist, retries the rest', async () => {
    const { layout, storage } = run();
    await recordShardFailure(storage, layout, 'annotate', { shard: '00000001', type: 'CorruptShard', message: 'truncated' });
    await recordShardFailure(storage, layout, 'write', { shard: '00000003', type: 'PermissionDenied', message: 'denied' });
    await storage.writeAtomic(layout.thresholds, '{}');
    expect((await pendingRetry(storage, layout)).keep.map((f) => f.shard)).toEqual(['00000001']);
    expect(await keptFailure(storage, layout, 'annotate', '00000001')).toBe(false);

    const done = await retryFailedShards(storage, layout);
    expect(done.retry.map((f) => f.shard)).toEqual(['00000003']);
    expect(await readShardFailures(storage, layout)).toEqual([expect.objectContaining({ shard: '00000001', type: 'CorruptShard', kept: true })]);
    expect(await keptFailure(storage, layout, 'annotate', '00000001')).toBe(true);
    // Idempotent: a retried start finds the same plan and changes nothing.
    expect(await retryFailedShards(storage, layout)).toMatchObject({ retry: [], keep: [expect.objectContaining({ shard: '00000001', kept: true })] });
  });
});
