/**
 * A real fake-gcs-server process (in-memory backend, plain HTTP, loopback) for tests of the gs:// path.
 * The binary is found like every Go tool of the project (env FAKE_GCS_SERVER, PATH, tool cache,
 * $(go env GOPATH)/bin); if it is missing the test FAILS with the install command — never a silent skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { FAKE_GCS_SERVER, findTool, installHint } from '../../infra/tools';

export interface FakeGcs {
  /** e.g. `http://127.0.0.1:41234`: pass as `gcsApiEndpoint` (or STORAGE_EMULATOR_HOST). */
  endpoint: string;
  port: number;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export function fakeGcsBinary(): string {
  const bin = findTool(FAKE_GCS_SERVER);
  if (!bin) throw new Error(installHint(FAKE_GCS_SERVER));
  return bin;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(endpoint: string, proc: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`fake-gcs-server exited early (${proc.exitCode ?? proc.signalCode}):\n${log()}`);
    }
    try {
      const res = await fetch(`${endpoint}/storage/v1/b`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fake-gcs-server did not become ready within ${timeoutMs} ms:\n${log()}`);
}

/** Start fake-gcs-server on a free loopback port and wait until it answers. */
export async function startFakeGcs(): Promise<FakeGcs> {
  const bin = fakeGcsBinary();
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const endpoint = `http://${host}`;
  const proc = spawn(
    bin,
    ['-scheme', 'http', '-backend', 'memory', '-host', '127.0.0.1', '-port', String(port), '-public-host', host, '-external-url', endpoint, '-log-level', 'error'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitReady(endpoint, proc, () => output, 20_000);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoint,
    port,
    stop,
    createBucket: async (name: string) => {
      const res = await fetch(`${endpoint}/storage/v1/b?project=test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      if (!res.ok && res.status !== 409) throw new Error(`creating bucket ${name}: HTTP ${res.status} ${await res.text()}`);
    },
  };
}
