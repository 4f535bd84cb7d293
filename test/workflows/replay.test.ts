/**
 * Determinism across changes: histories recorded from earlier versions of the workflows (test/workflows/
 * histories, refreshed with RECAPTION_RECORD_HISTORIES=1) must replay against the current code. A change
 * that breaks them needs workflow versioning (patched()) before it ships: running executions would break.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/temporal';

const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

it('has recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(3);
});

it.each(files)('replays %s', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file.replace(/\.json$/, '').replace(/__/g, '/'));
});
