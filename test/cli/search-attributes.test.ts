/** `recaption run` on a cluster that has never seen recaption registers the search attributes itself. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findTool, installHint, TEMPORAL_CLI } from '../../infra/tools';
import { ensureSearchAttributes } from '../../cli/runs';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';

it('adds missing custom search attributes and is idempotent', async () => {
  const bin = findTool(TEMPORAL_CLI);
  if (!bin) throw new Error(installHint(TEMPORAL_CLI));
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: bin } } });
  try {
    const op = env.client.connection.operatorService;
    const before = (await op.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
    expect(Object.keys(before)).not.toContain('RecaptionPhase');
    await ensureSearchAttributes(env.client, 'default');
    await ensureSearchAttributes(env.client, 'default');
    const after = (await op.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
    for (const k of ALL_SEARCH_ATTRIBUTES) expect(Object.keys(after)).toContain(k.name);
  } finally {
    await env.teardown();
  }
});
