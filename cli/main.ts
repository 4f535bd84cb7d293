#!/usr/bin/env node
/** The `recaption` command. */
import { Command, InvalidArgumentError } from 'commander';
import { defaultTaskQueue } from '../lib/config/task-queues';
import { InputError } from '../lib/errors';

// Commands load lazily: `--help` or a config error must not pay for loading Temporal, ONNX Runtime and sharp.
// (require, not import(): under tsx's CommonJS hook a dynamic import() goes to the ESM loader.)
/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
type Action = (...args: any[]) => Promise<void>;
const lazy =
  (load: () => Action): Action =>
  (...args) =>
    load()(...args);
const demoCommand = lazy(() => (require('./commands/demo') as typeof import('./commands/demo')).demoCommand);
const devServerCommand = lazy(() => (require('./commands/dev-server') as typeof import('./commands/dev-server')).devServerCommand);
const runCommand = lazy(() => (require('./commands/run') as typeof import('./commands/run')).runCommand);
const sampleDataCommand = lazy(() => (require('./commands/sample-data') as typeof import('./commands/sample-data')).sampleDataCommand);
const statusCommand = lazy(() => (require('./commands/status') as typeof import('./commands/status')).statusCommand);
const resumeCommand = lazy(() => (require('./commands/resume') as typeof import('./commands/resume')).resumeCommand);
const cancelCommand = lazy(() => (require('./commands/cancel') as typeof import('./commands/cancel')).cancelCommand);
const listCommand = lazy(() => (require('./commands/list') as typeof import('./commands/list')).listCommand);
const reportCommand = lazy(() => (require('./commands/report') as typeof import('./commands/report')).reportCommand);
const compareCommand = lazy(() => (require('./commands/compare') as typeof import('./commands/compare')).compareCommand);
const imageClustersTargetCommand = lazy(
  () => (require('./commands/image-clusters') as typeof import('./commands/image-clusters')).imageClustersTargetCommand,
);
const planCommand = lazy(() => (require('./commands/plan') as typeof import('./commands/plan')).planCommand);
const sweepCommand = lazy(() => (require('./commands/sweep') as typeof import('./commands/sweep')).sweepCommand);
const presetsCommand = lazy(() => (require('./commands/presets') as typeof import('./commands/presets')).presetsCommand);
const workerCommand = lazy(() => (require('./commands/worker') as typeof import('./commands/worker')).workerCommand);

const positive = (v: string) => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('must be a positive number');
  return n;
};

/** How `plan` and `run --dry-run` estimate the GPU time. */
const gpuEstimateOptions = (cmd: Command, when = '') =>
  cmd
    .option('--images-per-second <n>', `${when}GPU throughput to estimate the annotate stage with`, positive)
    .option('--measure', `${when}time the annotate stage on one shard here (its annotations are kept for the run)`, false);

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
};

export function buildProgram(): Command {
  const program = new Command('recaption')
    .description('Synthetic captions + CLIP filtering and mixing for image-text datasets (Nguyen et al. 2023), as durable Temporal workflows.')
    .showHelpAfterError();

  program
    .command('demo')
    .description('run the whole pipeline on generated sample data with tiny models (starts its own Temporal server unless one is configured: TEMPORAL_ADDRESS or a temporal.toml profile)')
    .option('--dir <dir>', 'where the demo writes its input, outputs and Temporal database', 'recaption-demo')
    .option('--shards <n>', 'sample shards to generate', int, 4)
    .option('--per-shard <n>', 'samples per shard', int, 24)
    .option('--preset <name>', 'strategy preset', 'raw30-synthetic70-filtered')
    .option('--json', 'print progress and the summary as JSON lines', false)
    .action(demoCommand);

  const run = program
    .command('run')
    .description('start (or resume: same run.name) a run from a YAML config and follow its progress')
    .requiredOption('-c, --config <file>', 'run config (YAML)')
    .option('--json', 'print progress and the summary as JSON lines', false)
    .option('--detach', 'start the run and return without waiting', false)
    .option('--local-worker', 'also run a gpu+cpu worker in this process', false)
    .option('--dry-run', 'print what the run would do (annotations reused or computed, stages, GPU time) and exit', false);
  gpuEstimateOptions(run, 'with --dry-run: ').action(runCommand);

  const plan = program
    .command('plan')
    .description('what a run would do before anything runs: annotations it needs and reuses, stages, GPU time (= run --dry-run)')
    .requiredOption('-c, --config <file>', 'run config (YAML)')
    .option('--json', 'print JSON', false);
  gpuEstimateOptions(plan).action(planCommand);

  program
    .command('sweep')
    .description("one run per strategy over one annotation pass: the paper's table rows and the Fig. 2 threshold sweep, compared")
    .requiredOption('-c, --config <file>', 'base run config (YAML); runs are named <run.name>-<strategy>')
    .option('--presets <list>', 'comma-separated presets (`recaption presets`)')
    .option('--fractions <list>', 'comma-separated top fractions for mix-threshold (Fig. 2)')
    .option('--json', 'print JSON lines', false)
    .option('--local-worker', 'also run a gpu+cpu worker in this process', false)
    .action(sweepCommand);

  program
    .command('report')
    .description('rebuild a run\'s quality report (report.json + self-contained report.html)')
    .argument('<run>', 'run folder (local or gs://), i.e. <output>/<run.name>')
    .option('--out <uri>', 'write the report elsewhere')
    .option('--json', 'print the report as JSON', false)
    .action(reportCommand);

  program
    .command('compare')
    .description('set two or more runs side by side, as the paper\'s tables do (one column per run, deltas against the first)')
    .argument('<runs...>', 'run folders or report.json files (at least two; the first is the baseline)')
    .option('--json', 'print JSON', false)
    .action(compareCommand);

  program
    .command('image-clusters-target')
    .description("compute the image-cluster filter's target set: centroids hit by reference embeddings (e.g. ImageNet-1k)")
    .requiredOption('--centroids <npy>', 'float32/float16 [K, D] centroids')
    .requiredOption('--reference <npy>', 'float32/float16 [N, D] reference image embeddings')
    .requiredOption('--out <npy>', 'where to write the int64 target list')
    .option('--device <device>', 'cpu or cuda:N', 'cpu')
    .option('--centroid-norm <mode>', "'as-is' (DataComp) or 'l2'", 'as-is')
    .action(imageClustersTargetCommand);

  program
    .command('presets')
    .description("list the strategy presets (the paper's table rows) and their rules")
    .option('--json', 'print JSON', false)
    .action(presetsCommand);

  program
    .command('status')
    .description('show the progress of a run: shards per stage, samples/s and the ETA of the current phase')
    .argument('<run>', 'run name (run.name in the config) or workflow id')
    .option('--json', 'print JSON', false)
    .action(statusCommand);

  program
    .command('resume')
    .description('a new execution of a failed, cancelled or terminated run with its config: retries its failed shards, recomputes nothing committed')
    .argument('<run>', 'run name, workflow id, or run folder (<output.uri>/<run.name>, when Temporal no longer knows the run)')
    .option('--json', 'print what it found, progress and the summary as JSON lines', false)
    .option('--no-wait', 'start the new execution and return')
    .option('--max-failed-shards <n|pct>', 'raise (or lower) run.maxFailedShards for this execution, e.g. 10 or "2%"')
    .option('--local-worker', 'also run a gpu+cpu worker in this process', false)
    .action(resumeCommand);

  program
    .command('cancel')
    .description('cancel a running run: stages stop at a checkpoint, nothing is left half-written; waits until it has closed')
    .argument('<run>', 'run name or workflow id')
    .option('--timeout <duration>', 'how long to wait for the run to close (0: do not wait)', '5m')
    .option('--json', 'print JSON lines', false)
    .action(cancelCommand);

  program
    .command('list')
    .description('list runs: state, preset, phase, shards done/failed/total, start time and Web UI link')
    .option('--limit <n>', 'at most this many runs, newest first', int)
    .option('--json', 'print JSON', false)
    .action(listCommand);

  program
    .command('worker')
    .description('run worker(s) for the given task queues until SIGINT/SIGTERM')
    .option('--queues <list>', 'comma-separated: gpu, cpu', 'gpu,cpu')
    .option('--gpu-queue <name>', 'GPU task queue name (default: $RECAPTION_GPU_QUEUE, else recaption-gpu — what a run config that names none uses)', defaultTaskQueue('gpu'))
    .option('--cpu-queue <name>', 'CPU task queue name (default: $RECAPTION_CPU_QUEUE, else recaption-cpu)', defaultTaskQueue('cpu'))
    .option('--gpu-concurrency <n>', 'shard activities at once on the GPU queue', int, 1)
    .option('--cpu-concurrency <n>', 'activities at once on the CPU queue', int, 4)
    .option('--shutdown-grace <duration>', 'time running activities get on shutdown', '30s')
    .option('--log-level <level>', 'TRACE, DEBUG, INFO, WARN or ERROR', 'INFO')
    .option('--config <run.yaml>', "load and check this run config's models at start (repeatable); exit 2 if one is broken", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--captioner <dir>', 'load and check this captioner model folder at start')
    .option('--clip <dir>', 'load and check this CLIP model folder at start')
    .option('--dtype <dtype>', 'ONNX files of --captioner/--clip: fp32, fp16 (name_fp16.onnx) or quantized')
    .option('--device <device>', "cpu or cuda:N, checked at start; wins over a run config's models.device for this worker's activities")
    .option('--metrics-port <n>', "serve Prometheus metrics (this worker's stages and the Temporal SDK's) at :N/metrics", int)
    .option('--prep-threads <n>', "threads that read, decode, preprocess and tokenise for the annotate stage (default: RECAPTION_PREP_THREADS, else one per core but one; 0: on the stage's thread)", int)
    .option('--log-format <format>', 'text (readable) or json (one object per line, with run, stage, shard and attempt)', 'text')
    .action(workerCommand);

  program
    .command('dev-server')
    .description('run a local Temporal dev server (SQLite + Web UI) with the search attributes registered')
    .option('--db <file>', 'SQLite file', '.recaption/temporal.db')
    .option('--port <n>', 'frontend port', int, 7233)
    .option('--ui-port <n>', 'Web UI port', int, 8233)
    .option('--namespace <ns>', 'namespace', 'default')
    .action(devServerCommand);

  program
    .command('sample-data')
    .description('write generated img2dataset/DataComp-style shards with raw captions of mixed quality')
    .requiredOption('--out <dir>', 'output folder (local or gs://)')
    .option('--shards <n>', 'shards', int, 2)
    .option('--per-shard <n>', 'samples per shard', int, 16)
    .option('--seed <n>', 'seed', int, 0)
    .option('--corrupt <n>', 'corrupt images per shard (skipped and recorded by the pipeline)', int, 0)
    .option('--failures <n>', 'failed downloads per shard (parquet rows only)', int, 0)
    .action(sampleDataCommand);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`recaption: ${err.message}\n`);
    process.exitCode = err instanceof InputError ? 2 : 1;
  }
}

if (require.main === module) void main(process.argv);
