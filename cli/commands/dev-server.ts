import * as path from 'node:path';
import { startDevServer } from '../../infra/dev-server';

export async function devServerCommand(opts: { db: string; port: number; uiPort: number; namespace: string }): Promise<void> {
  const server = await startDevServer({ dbFile: path.resolve(opts.db), port: opts.port, uiPort: opts.uiPort, namespace: opts.namespace, inheritOutput: true });
  process.stderr.write(
    `Temporal dev server on ${server.address} (namespace ${server.namespace}), Web UI ${server.uiUrl}, data in ${path.resolve(opts.db)}\n` +
      `export TEMPORAL_ADDRESS=${server.address}   # for recaption run / worker / status\n`,
  );
  const stop = () => void server.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((resolve) => server.process.once('exit', () => resolve()));
}
