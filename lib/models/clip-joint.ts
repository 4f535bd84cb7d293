/**
 * Joint dual-encoder exports (Optimum `zero-shot-image-classification` / transformers.js `onnx/model.onnx`:
 * input_ids, pixel_values[, attention_mask] -> logits_per_image, logits_per_text, text_embeds, image_embeds).
 *
 * Scoring embeds images and texts in separate calls, and one run of the joint graph needs both inputs and computes
 * both towers. So the graph is cut at load: each tower is the backward slice from its embedding output (the nodes
 * it is reachable from, the initializers and inputs those use), and each slice becomes its own session.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import type * as ort from 'onnxruntime-node';
import { InputError } from '../errors';
import { validateSession, type LoadedSession, type SessionSignature } from './model-folder';
import { createSession, type SessionInfo } from './session';
import type { RuntimeOptions } from './types';

export interface SubGraph {
  /** the standalone model (serialise with onnx.ModelProto.encode) */
  model: onnx.ModelProto;
  /** graph inputs the slice needs (initializers excluded) */
  inputs: onnx.IValueInfoProto[];
  outputs: onnx.IValueInfoProto[];
  /** true when a kept initializer lives in an external data file (models over protobuf's 2 GB limit) */
  externalData: boolean;
}

/** Decodes an ONNX model, as BadModel naming `file` when it is not one. */
export function decodeModel(bytes: Uint8Array, file: string): onnx.ModelProto {
  try {
    const model = onnx.ModelProto.decode(bytes);
    if (!model.graph) throw new Error('no graph');
    return model;
  } catch (err) {
    throw new InputError('BadModel', `${file}: not a readable ONNX model (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Every value name a node reads, including outer-scope names read inside its If/Loop/Scan bodies. */
function nodeReads(node: onnx.INodeProto): string[] {
  const names = [...(node.input ?? [])];
  const visitGraph = (g: onnx.IGraphProto | null | undefined): void => {
    // Over-approximates (also collects names local to the body); names no outer node produces are ignored.
    for (const n of g?.node ?? []) names.push(...nodeReads(n));
  };
  for (const a of node.attribute ?? []) {
    visitGraph(a.g);
    for (const g of a.graphs ?? []) visitGraph(g);
  }
  return names.filter((n) => n !== '');
}

/**
 * The standalone model computing `outputs` of `model`: nodes reachable backwards from them (in the original,
 * topological, order), the initializers, inputs, value_info and annotations they use. Opsets, model-local
 * functions and metadata are carried over. Throws BadModel naming `file` when an output is not in the graph.
 */
export function extractSubGraph(model: onnx.ModelProto, outputs: readonly string[], file: string): SubGraph {
  const graph = model.graph!;
  const declared = (graph.output ?? []).map((o) => o.name ?? '');
  const missing = outputs.filter((o) => !declared.includes(o));
  if (missing.length > 0) {
    throw new InputError('BadModel', `${file}: missing output ${missing.map((m) => `'${m}'`).join(', ')} (model has outputs: ${declared.join(', ') || 'none'})`);
  }
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));

  const used = new Set<string>();
  const keep = new Set<number>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (used.has(name)) continue;
    used.add(name);
    const at = producer.get(name);
    if (at === undefined || keep.has(at)) continue;
    keep.add(at);
    stack.push(...nodeReads(nodes[at]!));
  }

  const initializer = (graph.initializer ?? []).filter((t) => used.has(t.name ?? ''));
  const sparseInitializer = (graph.sparseInitializer ?? []).filter((t) => used.has(t.values?.name ?? ''));
  const initNames = new Set([...initializer.map((t) => t.name), ...sparseInitializer.map((t) => t.values?.name)]);
  const input = (graph.input ?? []).filter((v) => used.has(v.name ?? ''));
  const output = outputs.map((o) => (graph.output ?? []).find((v) => v.name === o)!);
  const sub = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: model.metadataProps,
    functions: model.functions,
    graph: {
      name: graph.name,
      docString: graph.docString,
      node: nodes.filter((_, i) => keep.has(i)),
      input,
      output,
      initializer,
      sparseInitializer,
      valueInfo: (graph.valueInfo ?? []).filter((v) => used.has(v.name ?? '')),
      quantizationAnnotation: (graph.quantizationAnnotation ?? []).filter((q) => used.has(q.tensorName ?? '')),
    },
  });
  const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
  return {
    model: sub,
    inputs: input.filter((v) => !initNames.has(v.name)),
    outputs: output,
    externalData: initializer.some((t) => t.dataLocation === EXTERNAL) || sparseInitializer.some((t) => t.values?.dataLocation === EXTERNAL),
  };
}

/** ONNX TensorProto.DataType -> onnxruntime's element type name (the same table as onnxruntime-node's backend). */
const ELEM_TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16', 21: 'uint4', 22: 'int4',
};

function declaredMeta(v: onnx.IValueInfoProto): ort.InferenceSession.ValueMetadata {
  const t = v.type?.tensorType;
  if (!t) return { name: v.name ?? '', isTensor: false };
  // dim_value may decode as a Long; 0 is protobuf's "unset" (a symbolic dim_param, or unknown)
  const shape = (t.shape?.dim ?? []).map((d) => Number(String(d.dimValue ?? 0)) || (d.dimParam ?? ''));
  return { name: v.name ?? '', isTensor: true, type: (ELEM_TYPES[t.elemType ?? 0] ?? `onnx type ${t.elemType}`) as ort.Tensor.Type, shape };
}

/**
 * Checks a sub-graph's declared inputs and outputs against `signature` before any session exists, so a wrong
 * rank reads as such instead of as whatever shape inference trips over first. validateSession reads only the
 * names and metadata, which the declarations provide.
 */
export function validateDeclared(sub: SubGraph, display: string, signature: SessionSignature): void {
  validateSession(declaredInterface(sub.inputs, sub.outputs), display, signature);
}

/** The interface a session would report for these declared inputs and outputs (names, element types, shapes). */
export function declaredInterface(inputs: readonly onnx.IValueInfoProto[], outputs: readonly onnx.IValueInfoProto[]): SessionInfo {
  const ins = inputs.map(declaredMeta);
  const outs = outputs.map(declaredMeta);
  return { inputNames: ins.map((m) => m.name), outputNames: outs.map((m) => m.name), inputMetadata: ins, outputMetadata: outs };
}

export interface JointPart {
  /** the embedding output this part computes, e.g. `image_embeds` */
  output: string;
  signature: SessionSignature;
}

const partName = (file: string, part: JointPart): string => `${file} (${part.output} sub-graph)`;

/**
 * Loads `file` (a joint export), cuts one sub-graph per part and creates and validates a session for each, in
 * order. External data (`model.onnx_data`, written beside graphs over 2 GB) is read by ORT from the model's own
 * folder, which a session built from bytes has to be told; its locations stay relative, as ORT requires.
 */
export async function loadJointParts(file: string, parts: readonly JointPart[], opts: RuntimeOptions): Promise<LoadedSession[]> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new InputError('BadModel', `${file}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
  const model = decodeModel(bytes, file);
  // Cut and check every part before creating any session: a malformed graph is refused without loading weights.
  const subs = parts.map((p) => {
    const sub = extractSubGraph(model, [p.output], file);
    validateDeclared(sub, partName(file, p), p.signature);
    return sub;
  });
  const loaded: LoadedSession[] = [];
  try {
    for (const [i, part] of parts.entries()) {
      const sub = subs[i]!;
      const display = partName(file, part);
      // Serialised one part at a time: with ORT's own copy, a ~2 GB graph is held at most about three times over.
      const bytes = onnx.ModelProto.encode(sub.model).finish();
      const session = await createSession(bytes, display, opts, sub.externalData ? { externalDataDir: path.dirname(file) } : {});
      loaded.push({ session, file });
      validateSession(session, display, part.signature);
    }
  } catch (err) {
    await Promise.all(loaded.map((l) => l.session.release()));
    throw err;
  }
  return loaded;
}
