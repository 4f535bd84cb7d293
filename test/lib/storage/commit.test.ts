/**
 * Writes that cannot clobber: attempts racing to commit the same uri — in one process and in two — against the
 * local filesystem (link(2)) and a real fake-gcs-server (`ifGenerationMatch: 0`). Exactly one commits; every other
 * reports `committed: false`; the object is the winner's bytes, whole; nothing temporary is left behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import { joinUri, storageFor, type Storage } from '../../../lib/storage';
import { startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { REPO_ROOT, tempDir } from '../../helpers/paths';
import { racerBytes } from './commit-racer';

interface Fixture {
  storage: Storage;
  /** A fresh, empty folder uri. */
  root(): string;
  /** Every name under `root`, temp files included (local), or every object (GCS has no temp names). */
  everything(root: string): Promise<string[]>;
  /** For the racing processes. */
  endpoint?: string;
}

async function writeInChunks(stream: NodeJS.WritableStream, data: Buffer, chunk = 32 * 1024): Promise<void> {
  for (let at = 0; at < data.length; at += chunk) {
    if (!stream.write(data.subarray(at, at + chunk))) await new Promise((r) => stream.once('drain', r));
    await new Promise((r) => setImmediate(r)); // let the other writers interleave
  }
}

function commitSuite(name: string, setup: () => Fixture): void {
  describe(`no-clobber commits: ${name}`, () => {
    let fx: Fixture;
    let root: string;
    beforeEach(() => {
      fx = setup();
      root = fx.root();
    });

    it('of racing whole-object writes exactly one commits; the rest report committed: false and the winner stays whole', async () => {
      const uri = joinUri(root, 'marker.done.json');
      const racers = ['a', 'b', 'c', 'd', 'e', 'f'];
      const results = await Promise.all(racers.map((id) => fx.storage.writeAtomic(uri, racerBytes(id, 0))));
      const winners = racers.filter((_, k) => results[k]!.committed);
      expect(winners).toHaveLength(1);
      expect((await fx.storage.readBuffer(uri)).equals(racerBytes(winners[0]!, 0))).toBe(true);
      expect(await fx.everything(root)).toEqual([uri]);
    });

    it('of racing streaming writers exactly one commits, and the object is its whole stream', async () => {
      const uri = joinUri(root, 'out', '00000000.tar');
      const racers = ['p', 'q', 'r', 's'];
      const writers = await Promise.all(racers.map(() => fx.storage.openAtomicWriter(uri)));
      await Promise.all(writers.map((w, k) => writeInChunks(w.stream, racerBytes(racers[k]!, 1))));
      const results = await Promise.all(writers.map((w) => w.commit()));
      const winners = racers.filter((_, k) => results[k]!.committed);
      expect(winners).toHaveLength(1);
      expect((await fx.storage.readBuffer(uri)).equals(racerBytes(winners[0]!, 1))).toBe(true);
      expect(await fx.everything(root)).toEqual([uri]);
    });

    it('a writer still writing when another commits loses at its commit, and leaves the committed object as it was', async () => {
      const uri = joinUri(root, 'chunk.parquet');
      const slow = await fx.storage.openAtomicWriter(uri);
      await writeInChunks(slow.stream, racerBytes('slow', 2).subarray(0, 100_000));
      expect(await fx.storage.writeAtomic(uri, racerBytes('fast', 2))).toEqual({ committed: true });
      await writeInChunks(slow.stream, racerBytes('slow', 2).subarray(100_000));
      expect(await slow.commit()).toEqual({ committed: false });
      expect((await fx.storage.readBuffer(uri)).equals(racerBytes('fast', 2))).toBe(true);
      // a later whole-object write loses too, and so does a writer opened after the commit (GCS may refuse its
      // upload as soon as it starts: the bytes still written into it are drained, and commit() says it lost)
      expect(await fx.storage.writeAtomic(uri, 'late')).toEqual({ committed: false });
      const late = await fx.storage.openAtomicWriter(uri);
      await writeInChunks(late.stream, Buffer.concat([racerBytes('late', 2), racerBytes('late', 3)]));
      expect(await late.commit()).toEqual({ committed: false });
      expect((await fx.storage.readBuffer(uri)).equals(racerBytes('fast', 2))).toBe(true);
      expect(await fx.everything(root)).toEqual([uri]);
    });

    it('replaces only when asked to, with either kind of write', async () => {
      const uri = joinUri(root, 'manifest.json');
      expect(await fx.storage.writeAtomic(uri, 'v1', { replace: true })).toEqual({ committed: true });
      expect(await fx.storage.writeAtomic(uri, 'v2', { replace: true })).toEqual({ committed: true });
      expect(await fx.storage.readText(uri)).toBe('v2');
      const w = await fx.storage.openAtomicWriter(uri, { replace: true });
      w.stream.write('v3');
      expect(await w.commit()).toEqual({ committed: true });
      expect(await fx.storage.readText(uri)).toBe('v3');
      expect(await fx.storage.writeAtomic(uri, 'v4')).toEqual({ committed: false });
      expect(await fx.storage.readText(uri)).toBe('v3');
      expect(await fx.everything(root)).toEqual([uri]);
    });

    it('two processes racing over the same uris: each uri is committed by exactly one, holding its bytes whole', async () => {
      const count = 24;
      const racers = ['x', 'y'];
      const reports = await raceProcesses(racers, root, count, fx.endpoint);
      const uris = Array.from({ length: count }, (_, i) => joinUri(root, `obj-${i}.bin`));
      for (const [i, uri] of uris.entries()) {
        const won = racers.filter((_, k) => reports[k]![uri] === true);
        expect({ uri, won: won.length }).toEqual({ uri, won: 1 });
        for (const r of reports) expect(typeof r[uri]).toBe('boolean');
        expect((await fx.storage.readBuffer(uri)).equals(racerBytes(won[0]!, i))).toBe(true);
      }
      expect(await fx.everything(root)).toEqual([...uris].sort());
    });
  });
}

/** Start one racer process per id, wait until all are loaded, start them at once, and return what each won. */
async function raceProcesses(ids: string[], root: string, count: number, endpoint?: string): Promise<Array<Record<string, boolean>>> {
  const script = path.join(__dirname, 'commit-racer.ts');
  const procs = ids.map((id) => {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', script, root, id, String(count), ...(endpoint ? [endpoint] : [])], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const ready = new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.startsWith('ready\n')) resolve();
      });
    });
    const done = new Promise<Record<string, boolean>>((resolve, reject) =>
      child.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`racer ${id} exited ${code}: ${err}`));
        resolve(JSON.parse(out.slice('ready\n'.length)) as Record<string, boolean>);
      }),
    );
    return { child, ready, done };
  });
  await Promise.all(procs.map((p) => p.ready));
  for (const p of procs) p.child.stdin.end('go\n');
  return Promise.all(procs.map((p) => p.done));
}

let n = 0;
const localBase = tempDir('recaption-commit-');

commitSuite('local files', () => ({
  storage: storageFor(localBase),
  root: () => path.join(localBase, `t${n++}`),
  // Every file on disk, temp names (`.name.tmp-…`) included.
  everything: async (root) =>
    fs
      .readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join((e as fs.Dirent & { parentPath: string }).parentPath, e.name))
      .sort(),
}));

describe('local commit specifics', () => {
  it('a folder where the file should be is a BadPath, not a lost race, and leaves no temp file', async () => {
    const dir = path.join(localBase, 'folder-target');
    const uri = path.join(dir, 'x.json');
    fs.mkdirSync(uri, { recursive: true });
    const st = storageFor(uri);
    await expect(st.writeAtomic(uri, 'x')).rejects.toMatchObject({ name: 'InputError', type: 'BadPath', message: expect.stringContaining(uri) });
    const w = await st.openAtomicWriter(uri);
    w.stream.write('x');
    const err = await w.commit().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('BadPath');
    expect(fs.readdirSync(dir)).toEqual(['x.json']);
  });
});

describe('fake-gcs-server', () => {
  let gcs: FakeGcs;
  const bucket = 'recaption-commit';
  beforeAll(async () => {
    gcs = await startFakeGcs();
    await gcs.createBucket(bucket);
  });
  afterAll(async () => {
    await gcs?.stop();
  });

  commitSuite('GCS (fake-gcs-server, ifGenerationMatch: 0)', () => {
    const storage = storageFor(`gs://${bucket}`, { gcsApiEndpoint: gcs.endpoint });
    return {
      storage,
      root: () => `gs://${bucket}/t${n++}`,
      everything: (root) => storage.list(root),
      endpoint: gcs.endpoint,
    };
  });
});
