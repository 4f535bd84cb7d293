/**
 * Writes a real-size random-weight model folder once, for the benchmarks that time real-size models when no export
 * is at hand (bench/export_real_size.py needs torch): the tiny-model generator at real dimensions. A stamp file
 * holds the generator's version; the folder is written under a temporary name and renamed into place, so an
 * interrupted generation is never taken for a model.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

const STAMP = 'recaption-real-size.json';

export interface GeneratedModel {
  /** folder name under the output folder */
  dir: string;
  /** what stderr says is being generated, e.g. "CLIP ViT-B/32 (~0.6 GB)" */
  label: string;
  /** bump when the generator's output changes: older folders are then generated again */
  version: number;
  dims: unknown;
  files: () => Record<string, string | Uint8Array>;
}

/** The model's folder under `outDir`, generated on first use. */
export async function ensureGeneratedModel(outDir: string, model: GeneratedModel): Promise<string> {
  const dir = path.resolve(outDir, model.dir);
  const stamp = await fs.readFile(path.join(dir, STAMP), 'utf8').then((t) => JSON.parse(t) as { version: number }, () => undefined);
  if (stamp?.version === model.version) return dir;
  process.stderr.write(`generating a real-size random-weight ${model.label} into ${dir} (once)...\n`);
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  for (const [rel, content] of Object.entries(model.files())) {
    await fs.mkdir(path.dirname(path.join(tmp, rel)), { recursive: true });
    await fs.writeFile(path.join(tmp, rel), content);
  }
  await fs.writeFile(path.join(tmp, STAMP), JSON.stringify({ version: model.version, dims: model.dims }));
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return dir;
}

/** A generator script's command line: `[--out DIR]` (default .cache/models), prints the folder. */
export function generateFromCommandLine(ensure: (outDir: string) => Promise<string>): void {
  const at = process.argv.indexOf('--out');
  ensure(at > 0 ? process.argv[at + 1]! : path.join(__dirname, '..', '.cache', 'models'))
    .then((dir) => process.stdout.write(`${dir}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
