/**
 * Registering the project's search attributes where a namespace lacks them (infra/search-attributes.ts): what
 * `recaption run` does before starting a run on any cluster, and what the compose cluster runs once at start
 * (`tsx infra/search-attributes.ts`, configured from the environment like every worker). Both are idempotent.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureSearchAttributes } from '../../infra/search-attributes';
import { findTool, installHint, TEMPORAL_CLI } from '../../infra/tools';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { REPO_ROOT } from '../helpers/paths';

/** A server that has never seen recaption: no custom search attributes. */
async function bareServer(): Promise<TestWorkflowEnvironment> {
  const bin = findTool(TEMPORAL_CLI);
  if (!bin) throw new Error(installHint(TEMPORAL_CLI));
  return TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: bin } } });
}

async function registered(env: TestWorkflowEnvironment): Promise<string[]> {
  return Object.keys((await env.client.connection.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {});
}

it('adds missing custom search attributes and is idempotent', async () => {
  const env = await bareServer();
  try {
    expect(await registered(env)).not.toContain('RecaptionPhase');
    await ensureSearchAttributes(env.client, 'default');
    await ensureSearchAttributes(env.client, 'default');
    expect(await registered(env)).toEqual(expect.arrayContaining(ALL_SEARCH_ATTRIBUTES.map((k) => k.name)));
  } finally {
    await env.teardown();
  }
});

it('registers them from the command line, as the compose cluster does', async () => {
  const env = await bareServer();
  try {
    expect(await registered(env)).not.toContain('RecaptionRun');
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'infra/search-attributes.ts'], {
        cwd: REPO_ROOT,
        env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('registered in') });
    }
    expect(await registered(env)).toEqual(expect.arrayContaining(ALL_SEARCH_ATTRIBUTES.map((k) => k.name)));
  } finally {
    await env.teardown();
  }
});
