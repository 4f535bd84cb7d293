/**
 * One racing process of the commit tests (test/lib/storage/commit.test.ts): it commits the same uris as its rival,
 * each with bytes that name this process, and prints which commits it won. It says `ready` once loaded and starts on
 * a `go` line on stdin, so both processes race from the same moment.
 *
 *   node -r tsx/cjs commit-racer.ts <root uri> <racer id> <count> [gcs endpoint]
 */
import { createInterface } from 'node:readline';
import { joinUri, storageFor } from '../../../lib/storage';

/** The bytes racer `id` commits at uri number `i`: large enough to take a while, and naming the racer in every byte. */
export function racerBytes(id: string, i: number, size = 300_000): Buffer {
  const head = Buffer.from(`${id}:${i}:`);
  return Buffer.concat([head, Buffer.alloc(size - head.length, id)]);
}

async function main(): Promise<void> {
  const [root, id, count, endpoint] = process.argv.slice(2);
  const storage = storageFor(root!, endpoint ? { gcsApiEndpoint: endpoint } : {});
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.on('line', (l) => l.trim() === 'go' && resolve()));
  process.stdout.write('ready\n');
  await go;
  lines.close();
  const won: Record<string, boolean> = {};
  await Promise.all(
    Array.from({ length: Number(count) }, async (_, i) => {
      const uri = joinUri(root!, `obj-${i}.bin`);
      const data = racerBytes(id!, i);
      // Half whole-object writes, half streaming writers: both end in the same commit.
      if (i % 2 === 0) {
        won[uri] = (await storage.writeAtomic(uri, data)).committed;
      } else {
        const w = await storage.openAtomicWriter(uri);
        for (let at = 0; at < data.length; at += 64 * 1024) {
          if (!w.stream.write(data.subarray(at, at + 64 * 1024))) await new Promise((r) => w.stream.once('drain', r));
        }
        won[uri] = (await w.commit()).committed;
      }
    }),
  );
  process.stdout.write(`${JSON.stringify(won)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
