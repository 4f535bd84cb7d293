/** `make tools`: find or build the Temporal CLI, fake-gcs-server and kustomize (cached per machine). */
import { ensureTool, FAKE_GCS_SERVER, KUSTOMIZE, TEMPORAL_CLI } from './tools';

for (const tool of [TEMPORAL_CLI, FAKE_GCS_SERVER, KUSTOMIZE]) {
  try {
    process.stderr.write(`${tool.name}: ${ensureTool(tool)}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
