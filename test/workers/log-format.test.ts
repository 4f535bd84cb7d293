/** `--log-format json`: one parseable JSON object per line, errors and bigints kept readable. */
import { jsonLogLine, processLogLine } from '../../workers/log-format';

it('writes one JSON object per line with the attributes at top level', () => {
  const err = Object.assign(new Error('bad shard\nsecond line'), { type: 'CorruptShard' });
  const line = jsonLogLine({ level: 'WARN', message: 'Activity failed', timestampNanos: 1_700_000_000_123_000_000n, meta: { run: 'r', stage: 'annotate', shard: '00000001', attempt: 2, error: err, big: 5n } });
  expect(line.endsWith('\n')).toBe(true);
  expect(line.trimEnd()).not.toContain('\n');
  expect(JSON.parse(line)).toMatchObject({
    time: '2023-11-14T22:13:20.123Z',
    level: 'WARN',
    message: 'Activity failed',
    run: 'r',
    stage: 'annotate',
    shard: '00000001',
    attempt: 2,
    error: { name: 'Error', message: 'bad shard\nsecond line', type: 'CorruptShard' },
    big: '5',
  });
  expect(JSON.parse(processLogLine('json', 'metrics on :9464/metrics'))).toMatchObject({ level: 'INFO', message: 'metrics on :9464/metrics' });
  expect(processLogLine('text', 'metrics on :9464/metrics')).toBe('recaption: metrics on :9464/metrics\n');
});
