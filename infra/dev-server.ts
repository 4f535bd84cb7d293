/**
 * A local Temporal dev server (`temporal server start-dev`): SQLite-backed when given a file, with the Web UI
 * and the project's custom search attributes registered. Used by `recaption dev-server` and by the demo when
 * no cluster is configured (infra/temporal-target.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { ensureTool, TEMPORAL_CLI } from './tools';

export interface DevServerOptions {
  /** SQLite file to persist to; in-memory when omitted. */
  dbFile?: string;
  port?: number;
  uiPort?: number;
  namespace?: string;
  /** Pass the child's output through (dev-server command) or keep it quiet (demo). */
  inheritOutput?: boolean;
  extraArgs?: string[];
}

export interface DevServer {
  address: string;
  uiUrl: string;
  namespace: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const SA_TYPE_FLAG: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int', TEXT: 'Text', BOOL: 'Bool', DOUBLE: 'Double', DATETIME: 'Datetime', KEYWORD_LIST: 'KeywordList' };

function searchAttributeArgs(): string[] {
  return ALL_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${SA_TYPE_FLAG[k.type]}`]);
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const bin = ensureTool(TEMPORAL_CLI);
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort ?? (await freePort());
  const namespace = opts.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--namespace', namespace, '--log-level', 'warn', ...searchAttributeArgs()];
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    // WAL, synced at checkpoints: a killed server loses nothing committed, and each transaction costs about half
    // the server CPU of SQLite's default journal (npm run bench:scale).
    args.push('--db-filename', opts.dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  // Activities on the workflow's own queue (select, write) start in the reply to the workflow task that schedules them.
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(bin, args, { stdio: opts.inheritOutput ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const address = `127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const early = await Promise.race([exited, new Promise<'wait'>((r) => setTimeout(() => r('wait'), 250))]);
    if (early !== 'wait') throw new Error(`temporal dev server exited with code ${early}:\n${stderr}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not become ready on ${address} within 60 s:\n${stderr}`);
      }
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    namespace,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
