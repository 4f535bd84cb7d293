/**
 * Installs onnxruntime-node's CUDA execution provider from an onnxruntime-gpu wheel (the default install skips
 * it; see README "GPU"). Not part of CI: it needs a wheel you downloaded yourself, e.g.
 *
 *   python3 -m pip download --no-deps onnxruntime-gpu==1.30.0 -d /tmp/ortgpu
 *   npx tsx infra/install-cuda-ep.ts /tmp/ortgpu/onnxruntime_gpu-1.30.0-*.whl [--dest DIR]
 *
 * Copies libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so next to onnxruntime-node's
 * libonnxruntime.so.1 (ORT loads providers from its own folder), after checking that the wheel's ORT version is
 * onnxruntime-node's: the provider bridge is not stable across releases. Prints the CUDA libraries it needs.
 */
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';

const PROVIDERS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** The central directory of a zip (a wheel); ZIP64 archives (> 4 GB) are refused, wheels are far smaller. */
function zipEntries(zip: Buffer, file: string): ZipEntry[] {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65_535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip file (no end of central directory)`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || at === 0xffffffff) throw new Error(`${file}: ZIP64 archives are not supported`);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: corrupt central directory at byte ${at}`);
    const nameLen = zip.readUInt16LE(at + 28);
    entries.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLen),
      method: zip.readUInt16LE(at + 10),
      crc: zip.readUInt32LE(at + 16),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localOffset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLen + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

function extract(zip: Buffer, e: ZipEntry, file: string): Buffer {
  const local = e.localOffset;
  if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error(`${file}: corrupt local header for ${e.name}`);
  const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
  const raw = zip.subarray(start, start + e.compressedSize);
  const data = e.method === 0 ? Buffer.from(raw) : e.method === 8 ? inflateRawSync(raw) : undefined;
  if (!data) throw new Error(`${file}: ${e.name} uses unsupported compression method ${e.method}`);
  if (data.length !== e.size || crc32(data) !== e.crc) throw new Error(`${file}: ${e.name} is corrupt (size or CRC mismatch)`);
  return data;
}

/** onnxruntime-node's native folder for this platform, e.g. node_modules/onnxruntime-node/bin/napi-v6/linux/x64. */
function ortNativeDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const bin = path.join(pkg, 'bin');
  for (const napi of readdirSync(bin).filter((d) => d.startsWith('napi-v')).sort().reverse()) {
    const dir = path.join(bin, napi, process.platform, process.arch);
    if (existsSync(path.join(dir, 'onnxruntime_binding.node'))) return dir;
  }
  throw new Error(`no onnxruntime-node native folder for ${process.platform}/${process.arch} under ${bin}`);
}

async function main(argv: string[]): Promise<void> {
  const destFlag = argv.indexOf('--dest');
  const dest = destFlag >= 0 ? argv[destFlag + 1] : undefined;
  const wheel = argv.find((a, i) => !a.startsWith('--') && (destFlag < 0 || i !== destFlag + 1));
  if (!wheel || (destFlag >= 0 && !dest)) throw new Error('usage: tsx infra/install-cuda-ep.ts <onnxruntime_gpu-*.whl> [--dest DIR]');
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the CUDA provider is installed this way on linux/x64 only (this is ${process.platform}/${process.arch})`);

  const zip = await fs.readFile(wheel);
  const entries = zipEntries(zip, wheel);
  const metadata = entries.find((e) => /^onnxruntime_gpu-[^/]+\.dist-info\/METADATA$/.test(e.name));
  if (!metadata) throw new Error(`${wheel}: not an onnxruntime-gpu wheel (no onnxruntime_gpu-*.dist-info/METADATA)`);
  const meta = extract(zip, metadata, wheel).toString('utf8');
  const version = /^Version: (.+)$/m.exec(meta)?.[1]?.trim();
  const ortNode = (require('onnxruntime-node/package.json') as { version: string }).version;
  if (version !== ortNode) throw new Error(`${wheel}: onnxruntime-gpu ${version} does not match onnxruntime-node ${ortNode}; download onnxruntime-gpu==${ortNode}`);

  const target = path.resolve(dest ?? ortNativeDir());
  await fs.mkdir(target, { recursive: true });
  for (const name of PROVIDERS) {
    const entry = entries.find((e) => e.name === `onnxruntime/capi/${name}`);
    if (!entry) throw new Error(`${wheel}: has no onnxruntime/capi/${name}`);
    const out = path.join(target, name);
    const tmp = `${out}.tmp-${process.pid}`;
    await fs.writeFile(tmp, extract(zip, entry, wheel), { mode: 0o755 });
    await fs.rename(tmp, out);
    process.stderr.write(`installed ${out} (${(entry.size / 2 ** 20).toFixed(0)} MiB)\n`);
  }
  const needs = meta.split('\n').filter((l) => /^Requires-Dist: nvidia-/.test(l)).map((l) => l.replace('Requires-Dist: ', '').replace(/;.*$/, '').trim());
  process.stderr.write(
    `onnxruntime-gpu ${version} also needs, on LD_LIBRARY_PATH: ${needs.join(', ')}, cuBLAS of the same CUDA major, and an NVIDIA driver for it.\n` +
      'Check with: recaption worker --queues gpu --device cuda:0\n',
  );
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`install-cuda-ep: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
