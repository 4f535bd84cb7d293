/**
 * The generation graph's weights as references into the ONNX files they come from, not copies.
 *
 * An initializer's raw_data is a contiguous run of bytes in its .onnx file, and ONNX external data (location,
 * offset, length) can point at any run of any file. So after decoding a file, each large initializer whose bytes
 * are a view of the file's buffer (protobufjs decodes `bytes` fields as views) is rewritten to point at its own
 * place in that file. The built graph is then a few MB instead of the decoder's size; ONNX Runtime maps or reads
 * the weights from the file itself, once, and keeps no second copy of them in the graph's protobuf (measured on
 * the real-size ViT-GPT2: the Loop body's initializers were otherwise held twice); and the file's buffer is
 * garbage as soon as the decode is done with.
 */
import path from 'node:path';
import { onnx } from 'onnx-proto';

/** Initializers smaller than this stay inline (constants, shapes): a reference would cost more than it saves. */
export const MIN_REFERENCE_BYTES = 1024;

/**
 * Rewrites every initializer of `model` (nested subgraphs included) whose raw_data is a view of `bytes` — the
 * buffer `model` was decoded from, read from `file` — into an external-data reference to `file`, relative to
 * `baseDir` (the folder the built graph's session resolves external data against). Initializers already
 * external, stored in typed fields, small, or not views of `bytes` are left as they are; nothing is rewritten
 * when `file` is not under `baseDir`. Whatever raw data stays inline (small initializers, Constant nodes' values)
 * is copied out of `bytes`, so that nothing of `model` keeps the file's buffer alive. Returns the number of bytes
 * now referenced.
 */
export function referToFile(model: onnx.ModelProto, bytes: Uint8Array, file: string, baseDir: string): number {
  const location = path.relative(baseDir, file);
  const canRefer = location !== '' && !location.startsWith('..') && !path.isAbsolute(location);
  let referenced = 0;
  // A copy (protobufjs decodes bytes as Buffer views, whose slice() would be a view again).
  const detach = (t: onnx.ITensorProto | null | undefined): void => {
    if (t?.rawData && t.rawData.buffer === bytes.buffer) t.rawData = new Uint8Array(t.rawData);
  };
  const visit = (graph: onnx.IGraphProto | null | undefined): void => {
    if (!graph) return;
    for (const t of graph.initializer ?? []) {
      const raw = t.rawData;
      const offset = raw ? raw.byteOffset - bytes.byteOffset : -1;
      if (!canRefer || !raw || raw.length < MIN_REFERENCE_BYTES || raw.buffer !== bytes.buffer || t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || offset < 0 || offset + raw.length > bytes.length) {
        detach(t);
        continue;
      }
      t.rawData = new Uint8Array(0);
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      referenced += raw.length;
    }
    for (const s of graph.sparseInitializer ?? []) [s.values, s.indices].forEach(detach);
    for (const node of graph.node ?? []) {
      for (const a of node.attribute ?? []) {
        detach(a.t);
        (a.tensors ?? []).forEach(detach);
        visit(a.g);
        for (const g of a.graphs ?? []) visit(g);
      }
    }
  };
  visit(model.graph);
  return referenced;
}
