/**
 * `recaption worker --metrics-port N`: one Prometheus endpoint, `GET /metrics`, serving our registry followed by
 * the Temporal SDK's own metrics. The SDK (its Rust core) can only export through a server of its own, so it
 * listens on a loopback port and each scrape appends its text: one port per pod to scrape, one scrape config,
 * and no name clash (ours start with `recaption_`, Node's with `process_`/`nodejs_`, the SDK's with `temporal_`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Text of the SDK's exporter, or a comment saying why there is none (our metrics are served regardless). */
async function sdkMetrics(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return `# temporal sdk metrics unavailable: HTTP ${res.status}\n`;
    return await res.text();
  } catch (err) {
    return `# temporal sdk metrics unavailable: ${(err as Error).message}\n`;
  }
}

export async function serveMetrics(port: number, registry: Registry, sdkMetricsUrl?: string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: metrics are at /metrics\n');
      return;
    }
    void Promise.all([registry.metrics(), sdkMetricsUrl ? sdkMetrics(sdkMetricsUrl) : ''])
      .then(([ours, sdk]) => res.writeHead(200, { 'content-type': registry.contentType }).end(`${ours}\n${sdk}`))
      .catch((err: Error) => res.writeHead(500).end(`${err.message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
