/** The CLI's client connection (settings: infra/temporal-target.ts) and links into the Web UI. */
import { Client, Connection } from '@temporalio/client';
import type { TemporalTarget } from '../infra/temporal-target';

export async function connectClient(target: TemporalTarget): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect(target.connection);
  } catch (e) {
    throw new Error(
      `cannot reach Temporal at ${target.connection.address} (${(e as Error).message}).\n` +
        `Start one with \`recaption dev-server\`, or point TEMPORAL_ADDRESS (or a temporal.toml profile) at your cluster.`,
    );
  }
  return new Client({ connection, namespace: target.namespace });
}

/** The Web UI: TEMPORAL_UI_URL for a real cluster, else the dev server's default. */
export function uiBase(): string {
  return process.env.TEMPORAL_UI_URL ?? 'http://localhost:8233';
}

/** Web UI link of a workflow (dev server UI, or TEMPORAL_UI_URL for a real cluster). */
export function workflowUiUrl(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
