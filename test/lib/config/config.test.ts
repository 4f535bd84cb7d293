import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configHash, loadConfigFile, parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';

const valid = {
  run: { name: 'r1' },
  input: { uri: '/data/in' },
  output: { uri: 'gs://bucket/out' },
  strategy: { preset: 'raw-top30' },
  models: { captioner: { path: 'models/cap' }, clip: { path: '/m/clip' } },
};

describe('run config', () => {
  it('fills the paper defaults and resolves relative paths against the config file', () => {
    const c = parseConfig(valid, 'x.yaml', '/home/u/proj');
    expect(c.caption).toMatchObject({ topK: 50, temperature: 0.75, minLength: 5, maxLength: 40 });
    expect(c.models.captioner.path).toBe('/home/u/proj/models/cap');
    expect(c.output.uri).toBe('gs://bucket/out');
    expect(c.temporal.gpuTaskQueue).toBe('recaption-gpu');
  });

  it('refuses an invalid config naming every bad field and why', () => {
    const bad = {
      ...valid,
      run: { name: 'has space' },
      strategy: { preset: 'best' },
      caption: { topK: 0, temperature: -1 },
      extra: 1,
    };
    let err: unknown;
    try {
      parseConfig(bad, 'bad.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/invalid config bad\.yaml/);
    expect(msg).toMatch(/run\.name: must be/);
    expect(msg).toMatch(/strategy\.preset:/);
    expect(msg).toMatch(/caption\.topK:/);
    expect(msg).toMatch(/caption\.temperature:/);
    expect(msg).toMatch(/extra/);
  });

  it('requires a fraction for mix-threshold', () => {
    expect(() => parseConfig({ ...valid, strategy: { preset: 'mix-threshold' } }, 'c')).toThrow(/strategy\.fraction: is required/);
  });

  it('reads YAML files and reports YAML syntax errors with the file name', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'run: {name: a}\ninput: {uri: in}\noutput: {uri: out}\nstrategy: {preset: raw}\nmodels: {captioner: {path: c}, clip: {path: d}}\n');
    expect((await loadConfigFile(good)).input.uri).toBe(path.join(dir, 'in'));
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'run: [unclosed\n');
    await expect(loadConfigFile(broken)).rejects.toThrow(/broken\.yaml is not valid YAML/);
    await expect(loadConfigFile(path.join(dir, 'nope.yaml'))).rejects.toThrow(/cannot read config .*nope\.yaml/);
  });

  it('hashes configs independently of key order and Temporal tuning', () => {
    const a = parseConfig(valid, 'a');
    const b = parseConfig({ strategy: valid.strategy, models: valid.models, output: valid.output, input: valid.input, run: valid.run, temporal: { pageSize: 7 } }, 'b');
    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(parseConfig({ ...valid, strategy: { preset: 'raw' } }, 'c'))).not.toBe(configHash(a));
  });
});
