/** Connection settings come from Temporal's environment configuration: variables and temporal.toml profiles. */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { configuredTemporal, temporalTarget } from '../../infra/temporal-target';
import { tempDir } from '../helpers/paths';

const VARS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY', 'TEMPORAL_PROFILE', 'TEMPORAL_CONFIG_FILE'];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
const dir = tempDir('recaption-envconfig-');

beforeEach(() => {
  for (const v of VARS) delete process.env[v];
  // No profile file unless a test writes one (never the developer's own ~/.config/temporalio/temporal.toml).
  process.env.TEMPORAL_CONFIG_FILE = path.join(dir, 'none.toml');
});
afterAll(() => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
});

describe('the Temporal cluster a process connects to', () => {
  it('is none when nothing is configured; then the default local server', () => {
    expect(configuredTemporal()).toBeUndefined();
    expect(temporalTarget()).toEqual({ connection: { address: 'localhost:7233' }, namespace: 'default' });
  });

  it('comes from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY (an API key turns TLS on)', () => {
    process.env.TEMPORAL_ADDRESS = 'temporal.example:7233';
    process.env.TEMPORAL_NAMESPACE = 'curation';
    expect(configuredTemporal()).toMatchObject({ connection: { address: 'temporal.example:7233' }, namespace: 'curation' });
    process.env.TEMPORAL_API_KEY = 'secret';
    expect(configuredTemporal()?.connection).toMatchObject({ apiKey: 'secret', tls: true });
  });

  it('comes from a temporal.toml profile, which the environment overrides', () => {
    const file = path.join(dir, 'temporal.toml');
    writeFileSync(
      file,
      ['[profile.default]', 'address = "dev.example:7233"', '', '[profile.prod]', 'address = "prod.example:7233"', 'namespace = "datacomp"', ''].join('\n'),
    );
    process.env.TEMPORAL_CONFIG_FILE = file;
    expect(configuredTemporal()).toMatchObject({ connection: { address: 'dev.example:7233' }, namespace: 'default' });
    process.env.TEMPORAL_PROFILE = 'prod';
    expect(configuredTemporal()).toMatchObject({ connection: { address: 'prod.example:7233' }, namespace: 'datacomp' });
    process.env.TEMPORAL_NAMESPACE = 'override';
    expect(configuredTemporal()?.namespace).toBe('override');
  });
});
