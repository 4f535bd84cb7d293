import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { InputError } from '../../../lib/errors';
import { readWebDataset, splitMemberName, WebDatasetWriter, type WdsSample } from '../../../lib/formats/webdataset';
import { tempDir } from '../../helpers/paths';

async function writeTar(samples: WdsSample[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  const w = new WebDatasetWriter(sink);
  for (const s of samples) await w.write(s);
  await w.close();
  return Buffer.concat(chunks);
}

async function readAll(buf: Buffer, name = 'test.tar'): Promise<WdsSample[]> {
  const out: WdsSample[] = [];
  for await (const s of readWebDataset(Readable.from([buf]), { name })) out.push(s);
  return out;
}

function sample(i: number): WdsSample {
  return {
    key: String(i).padStart(12, '0'),
    files: {
      jpg: randomBytes(100 + i * 37),
      txt: Buffer.from(`caption ${i} é`),
      json: Buffer.from(JSON.stringify({ i })),
    },
  };
}

describe('splitMemberName', () => {
  it('splits like webdataset base_plus_ext (first dot of the basename)', () => {
    expect(splitMemberName('000000000001.jpg')).toEqual({ key: '000000000001', ext: 'jpg' });
    expect(splitMemberName('dir.x/000001.seg.NPY')).toEqual({ key: 'dir.x/000001', ext: 'seg.npy' });
    expect(splitMemberName('noext')).toBeNull();
    expect(splitMemberName('.hidden')).toBeNull();
  });
});

describe('WebDataset write -> read', () => {
  it('round-trips bytes exactly and groups members by key', async () => {
    const samples = Array.from({ length: 7 }, (_, i) => sample(i));
    const tar = await writeTar(samples);
    expect(tar.length % 512).toBe(0);
    const back = await readAll(tar);
    expect(back.map((s) => s.key)).toEqual(samples.map((s) => s.key));
    back.forEach((s, i) => {
      expect(Object.keys(s.files)).toEqual(['jpg', 'txt', 'json']);
      for (const ext of ['jpg', 'txt', 'json']) expect(s.files[ext].equals(samples[i].files[ext])).toBe(true);
    });
  });

  it('is byte-reproducible (fixed mtime/uid/mode)', async () => {
    const samples = Array.from({ length: 3 }, (_, i) => sample(i));
    const a = await writeTar(samples);
    await new Promise((r) => setTimeout(r, 1100));
    const b = await writeTar(samples);
    expect(a.equals(b)).toBe(true);
  });

  it('writes headers GNU tar lists as webdataset.TarWriter does', async () => {
    const dir = tempDir('recaption-wds-');
    try {
      const file = path.join(dir, 'x.tar');
      fs.writeFileSync(file, await writeTar([sample(1)]));
      const r = spawnSync('tar', ['tvf', file], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^-r--r--r-- bigdata\/bigdata\s+\d+ 1970-01-01 00:00 000000000001\.jpg$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects keys and extensions that would break grouping', async () => {
    const w = new WebDatasetWriter(new PassThrough().resume());
    await expect(w.write({ key: 'a.b', files: { txt: Buffer.from('x') } })).rejects.toThrow(/invalid webdataset key/);
    await expect(w.write({ key: 'a', files: {} })).rejects.toThrow(/no files/);
    await w.write({ key: 'a', files: { txt: Buffer.from('x') } });
    await expect(w.write({ key: 'a', files: { jpg: Buffer.from('x') } })).rejects.toThrow(/twice in a row/);
    await w.close();
  });

  it('a truncated tar gives InputError(CorruptShard) naming the shard, after the good samples', async () => {
    const samples = Array.from({ length: 5 }, (_, i) => sample(i));
    const tar = await writeTar(samples);
    const cut = tar.subarray(0, Math.floor(tar.length * 0.6) + 3);
    const seen: string[] = [];
    let err: unknown;
    try {
      for await (const s of readWebDataset(Readable.from([cut]), { name: 'gs://b/00000007.tar' })) seen.push(s.key);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('CorruptShard');
    expect((err as Error).message).toContain('gs://b/00000007.tar');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual(samples.slice(0, seen.length).map((s) => s.key));
  });

  it('a garbage header gives CorruptShard', async () => {
    const tar = await writeTar([sample(0), sample(1)]);
    const bad = Buffer.from(tar);
    bad.fill(0x41, 0, 512);
    await expect(readAll(bad, 'bad.tar')).rejects.toMatchObject({ type: 'CorruptShard' });
  });

  it('source stream errors pass through unchanged (retryable infra errors stay retryable)', async () => {
    const src = new Readable({
      read() {
        this.destroy(new Error('ECONNRESET from storage'));
      },
    });
    const err = await (async () => {
      try {
        for await (const _ of readWebDataset(src, { name: 'x.tar' })) void _;
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(InputError);
    expect((err as Error).message).toBe('ECONNRESET from storage');
  });
});

describe('WebDataset streaming', () => {
  it('reads a 200-sample shard in order without buffering the whole tar', async () => {
    const n = 200;
    const big = 64 * 1024;
    const tarChunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => tarChunks.push(c));
    const w = new WebDatasetWriter(sink);
    for (let i = 0; i < n; i++) {
      await w.write({ key: String(i).padStart(12, '0'), files: { jpg: Buffer.alloc(big, i % 251), txt: Buffer.from(`c${i}`) } });
    }
    await w.close();
    const tar = Buffer.concat(tarChunks);
    expect(tar.length).toBeGreaterThan(n * big);

    // Feed the tar in 16 KiB pieces and count how far the source has been read when each sample arrives:
    // a streaming reader is never more than a sample (plus stream buffers) ahead of its consumer.
    let offset = 0;
    const piece = 16 * 1024;
    const src = new Readable({
      highWaterMark: piece,
      read() {
        if (offset >= tar.length) return void this.push(null);
        this.push(tar.subarray(offset, offset + piece));
        offset += piece;
      },
    });
    const keys: string[] = [];
    let maxLead = 0;
    let consumed = 0;
    for await (const s of readWebDataset(src, { name: 'big.tar' })) {
      keys.push(s.key);
      expect(s.files.jpg.length).toBe(big);
      expect(s.files.jpg[0]).toBe(keys.length - 1 === 0 ? 0 : (keys.length - 1) % 251);
      consumed += big + 2048;
      maxLead = Math.max(maxLead, offset - consumed);
    }
    expect(keys).toEqual(Array.from({ length: n }, (_, i) => String(i).padStart(12, '0')));
    expect(maxLead).toBeLessThan(1024 * 1024); // the whole tar is > 12 MiB
  });

  it('writer respects backpressure of a slow destination', async () => {
    let received = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        setTimeout(() => {
          received += chunk.length;
          cb();
        }, 1);
      },
    });
    const w = new WebDatasetWriter(slow);
    const entry = 100 * 1024 + 512;
    let maxLag = 0;
    for (let i = 0; i < 40; i++) {
      await w.write({ key: `k${i}`, files: { bin: Buffer.alloc(100 * 1024) } });
      maxLag = Math.max(maxLag, (i + 1) * entry - received);
    }
    await w.close();
    expect(received).toBe(40 * entry + 1024);
    // Each write() waits for the destination, so only a sample or so is ever queued (total is 4 MB).
    expect(maxLag).toBeLessThan(4 * entry);
  });
});
