/**
 * One behaviour suite run against the local filesystem and against a real fake-gcs-server process.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError } from '../../../lib/errors';
import { GcsStorage, joinUri, LocalStorage, storageFor, type Storage } from '../../../lib/storage';
import { gcsInputError, localInputError, type StorageOp } from '../../../lib/storage/errors';
import { ApiError } from '@google-cloud/storage';
import { fakeGcsBinary, startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { tempDir } from '../../helpers/paths';

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function expectMissing(p: Promise<unknown>, uri: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).type).toBe('MissingInput');
  expect((err as InputError).message).toContain(uri);
}

interface Fixture {
  storage: Storage;
  /** A fresh, empty folder uri for this test. */
  root: () => string;
}

function storageSuite(name: string, setup: () => Fixture): void {
  describe(`Storage behaviour: ${name}`, () => {
    let fx: Fixture;
    let root: string;
    beforeEach(() => {
      fx = setup();
      root = fx.root();
    });

    it('writes atomically and reads back bytes and text', async () => {
      const uri = joinUri(root, 'a', 'b.txt');
      expect(await fx.storage.exists(uri)).toBe(false);
      expect(await fx.storage.stat(uri)).toBeNull();
      await fx.storage.writeAtomic(uri, 'héllo');
      expect(await fx.storage.exists(uri)).toBe(true);
      expect(await fx.storage.readText(uri)).toBe('héllo');
      expect((await fx.storage.readBuffer(uri)).equals(Buffer.from('héllo'))).toBe(true);
      const st = await fx.storage.stat(uri);
      expect(st?.size).toBe(Buffer.byteLength('héllo'));
      expect(st?.mtimeMs).toBeGreaterThan(0);
      // a second commit keeps the first (no-clobber, test/lib/storage/commit.test.ts); replace overwrites
      const bin = randomBytes(3000);
      expect(await fx.storage.writeAtomic(uri, bin)).toEqual({ committed: false });
      expect(await fx.storage.readText(uri)).toBe('héllo');
      expect(await fx.storage.writeAtomic(uri, bin, { replace: true })).toEqual({ committed: true });
      expect((await fx.storage.readBuffer(uri)).equals(bin)).toBe(true);
      expect(await fx.storage.list(root)).toEqual([uri]);
    });

    it('reports a missing object as InputError(MissingInput) naming the uri', async () => {
      const uri = joinUri(root, 'nope.bin');
      await expectMissing(fx.storage.readBuffer(uri), uri);
      await expectMissing(fx.storage.readText(uri), uri);
      await expectMissing(readAll(fx.storage.createReadStream(uri)), uri);
    });

    it('streams reads', async () => {
      const uri = joinUri(root, 'big.bin');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      await fx.storage.writeAtomic(uri, data);
      expect((await readAll(fx.storage.createReadStream(uri))).equals(data)).toBe(true);
    });

    it('atomic writer: nothing visible before commit, the whole object after', async () => {
      const uri = joinUri(root, 'out', 'shard.tar');
      const w = await fx.storage.openAtomicWriter(uri);
      const chunk = randomBytes(256 * 1024);
      for (let i = 0; i < 12; i++) {
        if (!w.stream.write(chunk)) await new Promise((r) => w.stream.once('drain', r));
      }
      expect(await fx.storage.exists(uri)).toBe(false);
      expect(await fx.storage.stat(uri)).toBeNull();
      expect(await fx.storage.list(root)).toEqual([]);
      await w.commit();
      expect(await fx.storage.list(root)).toEqual([uri]);
      const back = await fx.storage.readBuffer(uri);
      expect(back.length).toBe(12 * chunk.length);
      expect(back.subarray(0, chunk.length).equals(chunk)).toBe(true);
      await w.abort(); // no-op after commit
      expect(await fx.storage.exists(uri)).toBe(true);
    });

    it('atomic writer: abort leaves nothing behind, and keeps a previous version intact', async () => {
      const uri = joinUri(root, 'x.bin');
      const w = await fx.storage.openAtomicWriter(uri);
      w.stream.write(randomBytes(100_000));
      await w.abort();
      await w.abort(); // idempotent
      expect(await fx.storage.exists(uri)).toBe(false);
      expect(await fx.storage.list(root)).toEqual([]);

      await fx.storage.writeAtomic(uri, 'v1');
      const w2 = await fx.storage.openAtomicWriter(uri);
      w2.stream.write('v2-partial');
      expect(await fx.storage.readText(uri)).toBe('v1');
      await w2.abort();
      expect(await fx.storage.readText(uri)).toBe('v1');
      expect(await fx.storage.list(root)).toEqual([uri]);
    });

    it('lists recursively, sorted, with folder (not string-prefix) semantics', async () => {
      const files = ['b/2.txt', 'a.txt', 'b/1.txt', 'b/c/3.txt'];
      for (const f of files) await fx.storage.writeAtomic(joinUri(root, f), f);
      await fx.storage.writeAtomic(joinUri(`${root}2`, 'other.txt'), 'x'); // sibling with a common prefix
      const expected = ['a.txt', 'b/1.txt', 'b/2.txt', 'b/c/3.txt'].map((f) => joinUri(root, f));
      expect(await fx.storage.list(root)).toEqual(expected);
      expect(await fx.storage.list(`${root}/`)).toEqual(expected);
      expect(await fx.storage.list(joinUri(root, 'b'))).toEqual(expected.slice(1));
      expect(await fx.storage.list(joinUri(root, 'missing'))).toEqual([]);
      // every listed uri reads back
      for (const u of expected) expect(await fx.storage.exists(u)).toBe(true);
    });

    it('lists with stats, and the fingerprint changes with the content even at the same size', async () => {
      const uri = joinUri(root, 'fp', 'shard.tar');
      await fx.storage.writeAtomic(uri, 'aaaa');
      const [listed] = await fx.storage.listStats(joinUri(root, 'fp'));
      expect(listed).toEqual({ uri, ...(await fx.storage.stat(uri)) });
      expect(listed!.size).toBe(4);
      await new Promise((r) => setTimeout(r, 20)); // a later mtime locally
      await fx.storage.writeAtomic(uri, 'bbbb', { replace: true });
      const after = (await fx.storage.stat(uri))!;
      expect(after.size).toBe(4);
      expect(after.fingerprint).not.toBe(listed!.fingerprint);
      // unchanged content, unchanged fingerprint
      expect((await fx.storage.stat(uri))!.fingerprint).toBe(after.fingerprint);
    });

    it('removes idempotently', async () => {
      const uri = joinUri(root, 'r.txt');
      await fx.storage.writeAtomic(uri, 'x');
      await fx.storage.remove(uri);
      expect(await fx.storage.exists(uri)).toBe(false);
      await expect(fx.storage.remove(uri)).resolves.toBeUndefined();
    });
  });
}

describe('joinUri', () => {
  it('joins gs:// uris with single slashes', () => {
    expect(joinUri('gs://b', 'x', 'y.tar')).toBe('gs://b/x/y.tar');
    expect(joinUri('gs://b/run/', '/stage/', '00000001.tar')).toBe('gs://b/run/stage/00000001.tar');
    expect(joinUri('gs://b/run', 'a/b')).toBe('gs://b/run/a/b');
    expect(joinUri('gs://b/run')).toBe('gs://b/run');
  });
  it('joins local paths like path.join', () => {
    expect(joinUri('/data/in', 'x', 'y.tar')).toBe(path.join('/data/in', 'x', 'y.tar'));
    expect(joinUri('rel/dir/', 'f')).toBe(path.join('rel/dir', 'f'));
  });
});

describe('storageFor', () => {
  it('picks by scheme and caches GCS clients per endpoint', () => {
    expect(storageFor('/tmp/x')).toBeInstanceOf(LocalStorage);
    expect(storageFor('file:///tmp/x')).toBeInstanceOf(LocalStorage);
    const a = storageFor('gs://b/x', { gcsApiEndpoint: 'http://127.0.0.1:1' });
    expect(a).toBeInstanceOf(GcsStorage);
    expect(storageFor('gs://other/y', { gcsApiEndpoint: 'http://127.0.0.1:1' })).toBe(a);
    expect(storageFor('gs://b/x', { gcsApiEndpoint: 'http://127.0.0.1:2' })).not.toBe(a);
  });

  it('reports a bucket-only gs:// uri as InvalidUri on every read, the stream included (no request is made)', async () => {
    const gcs = storageFor('gs://b', { gcsApiEndpoint: 'http://127.0.0.1:1' });
    await expect(gcs.readBuffer('gs://b')).rejects.toMatchObject({ type: 'InvalidUri' });
    await expect(gcs.readText('gs://b/')).rejects.toMatchObject({ type: 'InvalidUri' });
    await expect(readAll(gcs.createReadStream('gs://b'))).rejects.toMatchObject({ type: 'InvalidUri' });
  });
});

let localBase: string;
beforeAll(() => {
  localBase = tempDir('recaption-storage-');
});
afterAll(() => {
  fs.rmSync(localBase, { recursive: true, force: true });
});

let n = 0;
storageSuite('local filesystem', () => ({
  storage: storageFor(localBase),
  root: () => path.join(localBase, `t${n++}`),
}));

describe('local specifics', () => {
  it('leaves no temp file after commit or abort, and list hides in-flight temp files', async () => {
    const dir = path.join(localBase, 'temps');
    const st = storageFor(dir);
    const w = await st.openAtomicWriter(path.join(dir, 'a.bin'));
    w.stream.write('x');
    expect(fs.readdirSync(dir)).toHaveLength(1); // the temp file exists on disk...
    expect(await st.list(dir)).toEqual([]); // ...but is not listed
    await w.commit();
    expect(fs.readdirSync(dir)).toEqual(['a.bin']);
    const w2 = await st.openAtomicWriter(path.join(dir, 'b.bin'));
    w2.stream.write('y');
    await w2.abort();
    expect(fs.readdirSync(dir)).toEqual(['a.bin']);
  });

  it('reports a path under a regular file as BadPath naming the uri, for every kind of write; reads still say MissingInput', async () => {
    const file = path.join(localBase, 'regular-file');
    fs.writeFileSync(file, 'x');
    const st = storageFor(file);
    const uri = path.join(file, 'run', 'plan.json');
    const badPath = { name: 'InputError', type: 'BadPath', message: expect.stringContaining(uri) };
    await expect(st.writeAtomic(uri, 'x')).rejects.toMatchObject(badPath);
    await expect(st.openAtomicWriter(uri)).rejects.toMatchObject(badPath);
    // an object under a file does not exist: reads keep their MissingInput, exists/stat/list their "absent"
    await expectMissing(st.readText(uri), uri);
    expect(await st.exists(uri)).toBe(false);
    expect(await st.stat(uri)).toBeNull();
    expect(await st.list(path.join(file, 'run'))).toEqual([]);
    // a folder where a file is expected
    await expect(st.readBuffer(localBase)).rejects.toMatchObject({ type: 'BadPath', message: expect.stringContaining(localBase) });
    await expect(st.remove(localBase)).rejects.toMatchObject({ type: 'BadPath', message: expect.stringContaining(localBase) });
  });

  it('reports a place it may not write as PermissionDenied naming the uri (sysfs refuses new files, even to root)', async () => {
    const uri = '/sys/recaption-probe.json';
    await expect(storageFor(uri).writeAtomic(uri, 'x')).rejects.toMatchObject({ type: 'PermissionDenied', message: expect.stringContaining(uri) });
  });

  it('accepts file:// uris', async () => {
    const dir = path.join(localBase, 'fileuri');
    const uri = `file://${dir}/x.txt`;
    await storageFor(uri).writeAtomic(uri, 'ok');
    expect(fs.readFileSync(path.join(dir, 'x.txt'), 'utf8')).toBe('ok');
    expect(await storageFor(uri).list(`file://${dir}`)).toEqual([uri]);
  });
});

describe('fake-gcs-server', () => {
  let gcs: FakeGcs;
  const bucket = 'recaption-test';
  beforeAll(async () => {
    gcs = await startFakeGcs();
    await gcs.createBucket(bucket);
  });
  afterAll(async () => {
    await gcs?.stop();
  });

  storageSuite('GCS (fake-gcs-server)', () => ({
    storage: storageFor(`gs://${bucket}`, { gcsApiEndpoint: gcs.endpoint }),
    root: () => `gs://${bucket}/t${n++}-${randomBytes(4).toString('hex')}`,
  }));

  it('reports a bucket that does not exist as MissingBucket naming it, on writes and listings; reads of it find nothing', async () => {
    const st = storageFor('gs://no-such-bucket', { gcsApiEndpoint: gcs.endpoint });
    const uri = 'gs://no-such-bucket/out/plan.json';
    const missingBucket = { name: 'InputError', type: 'MissingBucket', message: expect.stringContaining('gs://no-such-bucket') };
    await expect(st.writeAtomic(uri, 'x')).rejects.toMatchObject(missingBucket);
    // the streaming writer: the upload's error reaches whoever writes into it, classified, and commit() says so too
    const w = await st.openAtomicWriter(uri);
    const streamError = await pipeline(Readable.from([randomBytes(64 * 1024)]), w.stream).then(() => undefined, (e: unknown) => e);
    if (streamError) expect(streamError).toMatchObject(missingBucket); // when the upload failed before the pipe ended
    await expect(w.commit()).rejects.toMatchObject(missingBucket);
    await expect(st.list('gs://no-such-bucket/out')).rejects.toMatchObject(missingBucket);
    await expect(st.listStats('gs://no-such-bucket/out')).rejects.toMatchObject(missingBucket);
    // fake-gcs-server answers a read of it with a bare 404, as for any absent object
    await expectMissing(st.readText(uri), uri);
    expect(await st.exists(uri)).toBe(false);
  });

  it('honours STORAGE_EMULATOR_HOST when no endpoint is given', async () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = gcs.endpoint;
    try {
      const st = storageFor(`gs://${bucket}`);
      const uri = `gs://${bucket}/env/x.txt`;
      await st.writeAtomic(uri, 'via env');
      expect(await st.readText(uri)).toBe('via env');
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    }
  });
});

/** The error a real fs call fails with. */
function fsError(call: () => unknown): NodeJS.ErrnoException {
  try {
    call();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('expected the call to fail');
}

describe('storage error classification', () => {
  // Only what no retry can heal is an InputError; everything else stays a plain error and is retried.
  it('maps real local errors by code: paths and permissions are input errors, a full disk or an I/O error is not', () => {
    const dir = tempDir('recaption-classify-');
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const table: Array<[string, NodeJS.ErrnoException, StorageOp, string | undefined]> = [
      ['ENOTDIR', fsError(() => fs.mkdirSync(path.join(file, 'a'), { recursive: true })), 'write', 'BadPath'],
      ['EISDIR', fsError(() => fs.readFileSync(dir)), 'read', 'BadPath'],
      ['ENAMETOOLONG', fsError(() => fs.writeFileSync(path.join(dir, 'x'.repeat(300)), 'x')), 'write', 'BadPath'],
      ['EINVAL', fsError(() => fs.readlinkSync(file)), 'read', 'BadPath'],
      ['ERR_FS_EISDIR', fsError(() => fs.rmSync(dir, { force: true })), 'remove', 'BadPath'],
      ['EPERM', fsError(() => fs.linkSync(dir, path.join(dir, 'hard-link'))), 'write', 'PermissionDenied'],
      ['EACCES', fsError(() => fs.writeFileSync('/sys/recaption-probe', 'x')), 'write', 'PermissionDenied'],
      ['ENOSPC', fsError(() => fs.writeFileSync('/dev/full', 'x')), 'write', undefined],
      ['EIO', fsError(() => fs.writeFileSync('/proc/version', 'x')), 'write', undefined],
    ];
    const uri = path.join(dir, 'the-uri');
    for (const [code, err, op, type] of table) {
      expect(err.code).toBe(code);
      const mapped = localInputError(err, op, uri);
      expect({ code, type: mapped?.type }).toEqual({ code, type });
      if (mapped) expect(mapped.message).toContain(uri);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("maps GCS answers by status: 401/403 PermissionDenied, a missing bucket MissingBucket, 400 BadPath; 5xx, 429 and resets are retried", () => {
    const api = (code: number, message: string) => new ApiError({ code, message } as ConstructorParameters<typeof ApiError>[0] & object);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const table: Array<[string, Error, StorageOp, string | undefined]> = [
      ['401', api(401, 'Invalid Credentials'), 'read', 'PermissionDenied'],
      ['403', api(403, 'sa@p.iam does not have storage.objects.create access'), 'write', 'PermissionDenied'],
      ['404 write', api(404, 'Not Found'), 'write', 'MissingBucket'],
      ['404 list', api(404, 'Not Found'), 'list', 'MissingBucket'],
      ['404 read, no bucket', api(404, 'The specified bucket does not exist.'), 'read', 'MissingBucket'],
      ['404 read, no object', api(404, 'No such object: b/out/x'), 'read', undefined],
      ['400', api(400, 'The specified object name is not valid.'), 'write', 'BadPath'],
      ['429', api(429, 'rate limit exceeded'), 'write', undefined],
      ['500', api(500, 'Internal Error'), 'write', undefined],
      ['503', api(503, 'Service Unavailable'), 'list', undefined],
      ['reset', reset, 'read', undefined],
    ];
    for (const [what, err, op, type] of table) {
      const mapped = gcsInputError(err, op, 'gs://b/out/x');
      expect({ what, type: mapped?.type }).toEqual({ what, type });
      if (mapped) expect(mapped.message).toContain(type === 'MissingBucket' ? 'gs://b' : 'gs://b/out/x');
    }
  });
});

describe('fake-gcs helper', () => {
  it('fails (does not skip) with install instructions when the binary is missing', () => {
    const saved = process.env.FAKE_GCS_SERVER;
    process.env.FAKE_GCS_SERVER = '/nonexistent/fake-gcs-server';
    try {
      expect(() => fakeGcsBinary()).toThrow(/go install github\.com\/fsouza\/fake-gcs-server@v1\.55\.1/);
    } finally {
      if (saved === undefined) delete process.env.FAKE_GCS_SERVER;
      else process.env.FAKE_GCS_SERVER = saved;
    }
  });
});
