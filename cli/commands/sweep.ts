/**
 * `recaption sweep`: one run per strategy over one annotation pass (lib/pipeline/sweep.ts). The annotating run goes
 * first and is followed like `recaption run`; the other runs, CPU work only, then start together; last, every run
 * is set side by side as the paper's tables do (`recaption compare`).
 */
import { temporalTarget } from '../../infra/temporal-target';
import { loadConfigFile } from '../../lib/config/load';
import { InputError } from '../../lib/errors';
import type { RunSummaryData } from '../../lib/pipeline/finalize-stage';
import { sweepConfigs, type SweepStrategy } from '../../lib/pipeline/sweep';
import { compareReports, loadReport, renderComparison } from '../../lib/report';
import { startLocalWorkers } from '../../workers/local';
import { connectClient } from '../connection';
import { preflight } from '../preflight';
import { startRun } from '../runs';
import { executeRun } from './run';

export interface SweepOptions {
  config: string;
  presets?: string;
  fractions?: string;
  json: boolean;
  localWorker: boolean;
}

function strategies(opts: SweepOptions): SweepStrategy[] {
  const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const fractions = list(opts.fractions).map((f) => {
    const n = Number(f);
    if (!(n > 0 && n <= 1)) throw new InputError('InvalidConfig', `--fractions: ${f} is not a fraction in (0, 1]`);
    return n;
  });
  const presets = list(opts.presets);
  const out: SweepStrategy[] = presets.filter((p) => p !== 'mix-threshold').map((preset) => ({ preset }));
  if (fractions.length) out.push(...fractions.map((fraction) => ({ preset: 'mix-threshold', fraction })));
  else if (presets.includes('mix-threshold')) throw new InputError('InvalidConfig', '--presets mix-threshold needs --fractions');
  return out;
}

export async function sweepCommand(opts: SweepOptions): Promise<void> {
  const configs = sweepConfigs(await loadConfigFile(opts.config), strategies(opts));
  for (const c of configs) await preflight(c);
  const target = temporalTarget();
  const say = (event: object, text: string) => (opts.json ? process.stdout.write(JSON.stringify(event) + '\n') : process.stderr.write(text + '\n'));
  say({ event: 'sweep', runs: configs.map((c) => c.run.name) }, `sweep: ${configs.length} runs, annotated once by ${configs[0]!.run.name}`);

  const local = opts.localWorker ? await startLocalWorkers(target, configs[0]!) : undefined;
  const client = await connectClient(target);
  const summaries: RunSummaryData[] = [];
  try {
    // The annotating run: the GPU work of the whole sweep.
    const first = await executeRun(configs[0]!, target, { json: opts.json });
    summaries.push(first!);
    // The rest reuse its annotations: CPU only, all at once.
    const handles = await Promise.all(configs.slice(1).map(async (c) => ({ config: c, ...(await startRun(client, c)) })));
    for (const h of handles) {
      const summary = (await h.handle.result()) as RunSummaryData;
      summaries.push(summary);
      say({ event: 'done', run: h.config.run.name, summary }, `done ${h.config.run.name}: ${summary.kept}/${summary.samples} kept`);
    }
  } finally {
    await client.connection.close();
    await local?.stop();
  }
  const comparison = compareReports(await Promise.all(summaries.map((s) => loadReport(s.runUri))));
  if (opts.json) process.stdout.write(JSON.stringify({ event: 'comparison', comparison }) + '\n');
  else process.stdout.write(renderComparison(comparison));
}
