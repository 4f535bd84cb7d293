/**
 * A WebDataset tar written under a temp name and committed only when `fill` succeeds; aborted otherwise.
 * No-clobber: if another attempt committed the tar first, its object stays (the tar is a function of the shard's
 * input and decisions, so both attempts made the same bytes) and the count returned is this attempt's.
 */
import { WebDatasetWriter } from '../formats/webdataset';
import type { Storage } from '../storage';

export async function writeTarAtomically(storage: Storage, uri: string, fill: (writer: WebDatasetWriter) => Promise<void>): Promise<number> {
  const out = await storage.openAtomicWriter(uri);
  const writer = new WebDatasetWriter(out.stream);
  try {
    await fill(writer);
    await writer.close();
    await out.commit();
  } catch (e) {
    writer.destroy();
    await out.abort();
    throw e;
  }
  return writer.count;
}
