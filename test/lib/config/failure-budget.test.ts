import { configChanges, configHash, parseConfig } from '../../../lib/config/load';
import { describeFailureBudget, failureBudget, parseFailureBudget } from '../../../lib/config/failure-budget';
import { InputError } from '../../../lib/errors';

const valid = {
  run: { name: 'r1' },
  input: { uri: '/data/in' },
  output: { uri: '/data/out' },
  strategy: { preset: 'raw-top30' },
  models: { captioner: { path: '/m/cap' }, clip: { path: '/m/clip' } },
};

describe('run.maxFailedShards', () => {
  it('defaults to 1% and turns a percentage into a count of the run’s shards, rounded down', () => {
    expect(parseConfig(valid, 'c').run.maxFailedShards).toBe('1%');
    expect(failureBudget('1%', 500)).toBe(5);
    expect(failureBudget('1%', 99)).toBe(0);
    expect(failureBudget('2.5%', 1000)).toBe(25);
    expect(failureBudget('100%', 7)).toBe(7);
    expect(failureBudget(3, 10)).toBe(3);
    expect(failureBudget(undefined, 300)).toBe(3);
    expect(describeFailureBudget('1%', 500)).toBe('5 (run.maxFailedShards "1%" of 500 shards)');
  });

  it('accepts a count or a percentage, and refuses anything else naming the field', () => {
    expect(parseConfig({ ...valid, run: { name: 'r1', maxFailedShards: 5 } }, 'c').run.maxFailedShards).toBe(5);
    expect(parseConfig({ ...valid, run: { name: 'r1', maxFailedShards: '0.5%' } }, 'c').run.maxFailedShards).toBe('0.5%');
    for (const bad of [-1, 1.5, '5', '150%', 'lots']) {
      const run = () => parseConfig({ ...valid, run: { name: 'r1', maxFailedShards: bad } }, 'c');
      expect(run).toThrow(InputError);
      expect(run).toThrow(/run\.maxFailedShards: /);
    }
    expect(parseFailureBudget('10')).toEqual({ spec: 10 });
    expect(parseFailureBudget('2%')).toEqual({ spec: '2%' });
    expect(parseFailureBudget("two")).toEqual({ error: expect.stringMatching(/count of shards .* or a percentage/) });
  });

  it('never changes outputs: a resumed run may raise it (same config hash, no changed field)', () => {
    const a = parseConfig(valid, 'c');
    const b = parseConfig({ ...valid, run: { name: 'r1', maxFailedShards: '10%' } }, 'c');
    expect(configHash(b)).toBe(configHash(a));
    expect(configChanges(a, b)).toEqual([]);
    expect(configHash(parseConfig({ ...valid, run: { name: 'r1', seed: 1 } }, 'c'))).not.toBe(configHash(a));
  });
});
