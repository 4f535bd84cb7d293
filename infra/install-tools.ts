/** `make tools`: find or build the Temporal CLI and fake-gcs-server (cached per machine). */
import { ensureTool, FAKE_GCS_SERVER, TEMPORAL_CLI } from './tools';

for (const tool of [TEMPORAL_CLI, FAKE_GCS_SERVER]) {
  try {
    process.stderr.write(`${tool.name}: ${ensureTool(tool)}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
