/**
 * Where the Temporal cluster is, for every process that connects (the CLI's client, workers): Temporal's own
 * environment configuration (@temporalio/envconfig, as the SDK's samples use) — TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_GRPC_META_*, and profiles of a `temporal.toml`
 * (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) — the same settings the `temporal` CLI reads.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export interface TemporalTarget {
  connection: NativeConnectionOptions & { address: string };
  namespace: string;
}

const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';
const DEFAULT_NAMESPACE = 'default';

/** The configured cluster, or undefined when neither the environment nor a profile names an address. */
export function configuredTemporal(): TemporalTarget | undefined {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const address = connectionOptions.address;
  if (!address) return undefined;
  return { connection: { ...connectionOptions, address }, namespace: namespace ?? DEFAULT_NAMESPACE };
}

/** The configured cluster, else a local server on the default port (`recaption dev-server`). */
export function temporalTarget(): TemporalTarget {
  return configuredTemporal() ?? localTemporal(DEFAULT_TEMPORAL_ADDRESS, DEFAULT_NAMESPACE);
}

/** A local server without TLS or credentials (the dev server the demo starts). */
export function localTemporal(address: string, namespace: string): TemporalTarget {
  return { connection: { address }, namespace };
}
