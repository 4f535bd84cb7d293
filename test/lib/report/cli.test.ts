import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { compareCommand } from '../../../cli/commands/compare';
import { reportCommand } from '../../../cli/commands/report';
import { InputError } from '../../../lib/errors';
import { tempDir } from '../../helpers/paths';
import { JUNK, KNOWN, writeRun } from './fixtures';

async function stdout(fn: () => Promise<void>): Promise<string> {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return chunks.join('');
}

describe('recaption report / compare commands', () => {
  let root: string;
  let known: string;
  let junk: string;
  beforeAll(async () => {
    root = tempDir('recaption-report-cli-');
    known = await writeRun(root, KNOWN);
    junk = await writeRun(root, JUNK);
  });

  it('report rebuilds report.json + report.html and prints their paths', async () => {
    const out = await stdout(() => reportCommand(known, { json: false }));
    expect(out).toContain(`report  ${path.join(known, 'report.json')}`);
    expect(out).toContain(`html    ${path.join(known, 'report.html')}`);
    expect(out).toContain('7 samples, 3 kept (42.9 %: raw 2 · synthetic 1)');
    expect(JSON.parse(readFileSync(path.join(known, 'report.json'), 'utf8')).kind).toBe('recaption-report');
  });

  it('report --json prints the report; --out writes elsewhere; relative paths work', async () => {
    const dest = tempDir('recaption-report-out-');
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const out = await stdout(() => reportCommand('junk', { json: true, out: dest }));
      const report = JSON.parse(out);
      expect(report.counts).toMatchObject({ samples: 6, kept: 0 });
      expect(report.run.uri).toBe(junk);
    } finally {
      process.chdir(cwd);
    }
    expect(existsSync(path.join(dest, 'report.html'))).toBe(true);
  });

  it('report on a folder that is not a run fails with MissingInput', async () => {
    await expect(reportCommand(tempDir('recaption-report-none-'), { json: false })).rejects.toBeInstanceOf(InputError);
  });

  it('compare prints both runs side by side (text and JSON)', async () => {
    const text = await stdout(() => compareCommand([known, junk], { json: false }));
    expect(text).toMatch(/^\s+known\s+junk\s+B − A$/m);
    expect(text).toMatch(/^kept\s+3\s+0\s+−3$/m);
    expect(text).toMatch(/^preset\s+raw30-synthetic70-filtered\s+raw-top30$/m);
    await stdout(() => reportCommand(junk, { json: false }));
    const json = JSON.parse(await stdout(() => compareCommand([known, path.join(junk, 'report.json')], { json: true })));
    expect(json.runs.map((r: { name: string }) => r.name)).toEqual(['known', 'junk']);
  });

  it('compare takes any number of runs: one column each, deltas against the first (text and JSON)', async () => {
    const text = await stdout(() => compareCommand([known, junk, known], { json: false }));
    expect(text).toMatch(/^\s+A: known\s+B: junk\s+C: known\s+B − A\s+C − A$/m);
    expect(text).toMatch(/^kept\s+3\s+0\s+3\s+−3\s+0$/m);
    expect(text).toMatch(/^C = .*known$/m);
    const json = JSON.parse(await stdout(() => compareCommand([junk, known, known], { json: true })));
    expect(json.runs.map((r: { name: string }) => r.name)).toEqual(['junk', 'known', 'known']);
    expect(json.rows.find((r: { label: string }) => r.label === 'kept')).toEqual({ label: 'kept', cells: ['0', '3', '3'], deltas: ['', '+3', '+3'], values: [0, 3, 3] });
    await expect(compareCommand([known], { json: false })).rejects.toThrow(/at least two runs/);
  });

  it('compare ignores a report.json that is not a current report (the finalize summary) and builds one', async () => {
    const runUri = await writeRun(tempDir('recaption-report-old-'), KNOWN);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(runUri, 'report.json'), JSON.stringify({ version: 1, samples: 999 }));
    const text = await stdout(() => compareCommand([runUri, runUri], { json: false }));
    expect(text).toMatch(/^samples\s+7\s+7\s+0$/m);
    await expect(compareCommand([path.join(runUri, 'report.json'), runUri], { json: false })).rejects.toThrow(/not a recaption report/);
  });
});
