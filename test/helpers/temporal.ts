/** A real Temporal dev server per test file (TestWorkflowEnvironment.createLocal on the pinned CLI). */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { findTool, installHint, TEMPORAL_CLI } from '../../infra/tools';
import { workflowsPath } from '../../workers/build';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { installWorkerLogger } from '../../workers/logger';

export async function localTemporal(extraArgs: string[] = []): Promise<TestWorkflowEnvironment> {
  const bin = findTool(TEMPORAL_CLI);
  if (!bin) throw new Error(installHint(TEMPORAL_CLI));
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: bin },
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      extraArgs,
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Workflow code bundled once per test file (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: { warn: () => undefined, info: () => undefined, debug: () => undefined, trace: () => undefined, error: console.error, log: () => undefined } as never });
  return bundle;
}

// Worker logs at WARN so test output shows problems, not every state change.
installWorkerLogger('WARN');
