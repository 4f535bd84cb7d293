/** Where the Temporal cluster is: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (and TEMPORAL_API_KEY for Cloud). */
import { Client, Connection } from '@temporalio/client';

export interface TemporalTarget {
  address: string;
  namespace: string;
  apiKey?: string;
}

export function temporalTargetFromEnv(): TemporalTarget | undefined {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) return undefined;
  return {
    address,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    ...(process.env.TEMPORAL_API_KEY ? { apiKey: process.env.TEMPORAL_API_KEY } : {}),
  };
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: target.address,
      ...(target.apiKey ? { apiKey: target.apiKey, tls: true } : {}),
    });
  } catch (e) {
    throw new Error(
      `cannot reach Temporal at ${target.address} (${(e as Error).message}).\n` +
        `Start one with \`recaption dev-server\`, or point TEMPORAL_ADDRESS at your cluster.`,
    );
  }
  return new Client({ connection, namespace: target.namespace });
}

/** Web UI link of a workflow (dev server UI, or TEMPORAL_UI_URL for a real cluster). */
export function workflowUiUrl(uiBase: string, namespace: string, workflowId: string): string {
  return `${uiBase.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
