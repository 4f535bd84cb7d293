/**
 * Registers the project's custom search attributes (workflows/search-attributes.ts) in a namespace where they are
 * missing: `recaption run` does it before each start, and the compose cluster runs this file once at start
 * (`tsx infra/search-attributes.ts`, connection from the environment as everywhere: infra/temporal-target.ts).
 */
import { Client, Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { temporalTarget } from './temporal-target';

const INDEXED_TYPE: Record<string, number> = { TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 };

/**
 * Register the run's custom search attributes where missing, so a run on any cluster starts by itself
 * (the workflow upserts them; on a cluster without them its first task would fail). Where the operator API is
 * not allowed (e.g. Temporal Cloud: register them in the Cloud UI/tcld), say which ones are missing.
 */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<void> {
  const op = client.connection.operatorService;
  const { customAttributes } = await op.listSearchAttributes({ namespace });
  const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (customAttributes ?? {})));
  if (missing.length === 0) return;
  try {
    await op.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_TYPE[k.type]])) });
  } catch (e) {
    throw new Error(
      `namespace ${namespace} lacks the search attributes ${missing.map((k) => `${k.name} (${k.type})`).join(', ')} and they could not be added ` +
        `(${(e as Error).message}); register them, e.g. temporal operator search-attribute create --name ${missing[0].name} --type ${missing[0].type}`,
    );
  }
}

async function main(): Promise<void> {
  const target = temporalTarget();
  const connection = await Connection.connect(target.connection);
  try {
    await ensureSearchAttributes(new Client({ connection, namespace: target.namespace }), target.namespace);
    process.stderr.write(`search attributes ${ALL_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')} registered in ${target.connection.address}/${target.namespace}\n`);
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`search-attributes: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
