import { PRESETS, resolveRule, thresholdsNeeded, thresholdKey } from '../../lib/strategies/presets';

/** `recaption presets`: the paper's table rows as presets, with their rules and the thresholds they need. */
export async function presetsCommand(opts: { json: boolean }): Promise<void> {
  const rows = PRESETS.map((p) => {
    const rule = p.name === 'mix-threshold' ? resolveRule(p.name, 0.3) : resolveRule(p.name);
    return { name: p.name, rule: p.description, thresholds: thresholdsNeeded(rule).map(thresholdKey) };
  });
  if (opts.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}  ${r.rule}\n`);
  process.stdout.write(
    `${'custom'.padEnd(w)}  your rule in strategy.custom: a gate per caption source ({fraction}, {min}, {sameAs}, {all}) and prefer: raw|synthetic\n`,
  );
  process.stdout.write('\ntau(f): DataComp get_threshold over the WHOLE pool — sort descending, tau = scores[floor(n·f)], keep score >= tau.\n');
}
