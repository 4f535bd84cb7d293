/**
 * A GPU worker's start-up check: everything that can be wrong with this machine or its models fails here, before
 * any Temporal connection, as an InputError naming the file at fault (exit code 2) — not on the first sample of
 * a run. The models it loads are cached under the same keys the activities use, so they are reused as loaded.
 */
import { loadConfigFile } from '../lib/config/load';
import { InputError } from '../lib/errors';
import { releaseCachedModels } from '../lib/models/cache';
import { parseDevice, probeDevice } from '../lib/models/session';
import { defaultImageOptions, defaultSessionOptions, loadModel, modelSpecs, type ModelSpec } from '../lib/models/specs';
import type { Device, RuntimeOptions } from '../lib/models/types';

export interface ModelCheckOptions {
  /** Run configs whose models to load. */
  configs: string[];
  /** Model folders named directly, with `dtype` (default fp32). */
  captioner?: string;
  clip?: string;
  dtype?: string;
  /** The worker's device (`--device`); undefined: as each run says. */
  device?: string;
  /** Load the models (GPU workers); otherwise only configs, flags and the device are checked. */
  load: boolean;
  note(message: string): void;
}

const DTYPES = ['fp32', 'fp16', 'quantized'] as const;

/** Check the device and the models; returns the device the worker's activities must use. */
export async function checkWorkerModels(opts: ModelCheckOptions): Promise<Device | undefined> {
  const device = opts.device === undefined ? undefined : checkedDevice(opts.device);
  const specs = await modelsToCheck(opts, device);
  if (device !== undefined) {
    await probeDevice(device);
    opts.note(`device ${device} works`);
  }
  if (opts.load) await preload(specs, opts.note);
  return device;
}

/** The model runtime's resources, at worker exit. */
export function releaseModels(): Promise<void> {
  return releaseCachedModels();
}

function checkedDevice(value: string): Device {
  try {
    parseDevice(value as Device);
  } catch (err) {
    throw new InputError('InvalidConfig', `--device: ${(err as Error).message}`);
  }
  return value as Device;
}

/** The models named by --config files and by --captioner/--clip (+ --dtype), deduplicated. */
async function modelsToCheck(opts: ModelCheckOptions, device: Device | undefined): Promise<ModelSpec[]> {
  if (opts.dtype !== undefined && !(DTYPES as readonly string[]).includes(opts.dtype)) {
    throw new InputError('InvalidConfig', `--dtype: expected one of ${DTYPES.join(', ')}, got "${opts.dtype}"`);
  }
  if (opts.dtype !== undefined && !opts.captioner && !opts.clip) throw new InputError('InvalidConfig', '--dtype applies to --captioner/--clip; a run config sets models.*.dtype');
  const specs: ModelSpec[] = [];
  for (const file of opts.configs) {
    const config = await loadConfigFile(file);
    specs.push(...modelSpecs(config.models, config.image, device));
  }
  const dtype = (opts.dtype ?? 'fp32') as NonNullable<RuntimeOptions['dtype']>;
  specs.push(
    ...modelSpecs(
      {
        device: 'cpu',
        session: defaultSessionOptions(),
        ...(opts.captioner ? { captioner: { path: opts.captioner, dtype } } : {}),
        ...(opts.clip ? { clip: { path: opts.clip, dtype } } : {}),
      },
      defaultImageOptions(),
      device,
    ),
  );
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = JSON.stringify(s);
    return !seen.has(key) && (seen.add(key), true);
  });
}

/** Loads and validates every model; all failures are reported together, then the worker exits. */
async function preload(specs: ModelSpec[], note: (message: string) => void): Promise<void> {
  const failures: unknown[] = [];
  for (const spec of specs) {
    const started = Date.now();
    try {
      const model = await loadModel(spec);
      note(`${spec.kind} ${spec.dir} (${spec.options.dtype ?? 'fp32'}, ${spec.options.device ?? 'cpu'}) loaded and checked in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      // Which decode loop this worker runs (the ONNX Runtime graph, or the JS loop and why).
      if ('generation' in model && model.generation) note(`captioner ${spec.dir}: ${model.generation}`);
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length === 0) return;
  await releaseCachedModels();
  const messages = failures.map((e) => (e instanceof Error ? e.message : String(e)));
  const first = failures[0];
  const text = messages.length === 1 ? messages[0]! : `${messages.length} models cannot be used:\n${messages.map((m) => `  - ${m}`).join('\n')}`;
  // Bad input (exit 2) only when every failure is; an I/O or runtime fault is rethrown as itself (exit 1).
  if (failures.every((e) => e instanceof InputError)) throw new InputError((first as InputError).type, text);
  throw first instanceof Error && failures.length === 1 ? first : new Error(text);
}
