/**
 * Test helper: rewrites ONNX files with onnx-proto to make broken or variant model folders (renamed inputs,
 * other element types, float16 I/O wrappers) from the generated tiny models.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';

/** The decoded graph (protobufjs decodes every repeated field as an array, so the class type holds). */
export function graphOf(model: onnx.ModelProto): onnx.GraphProto {
  return model.graph as onnx.GraphProto;
}

const nodesOf = (graph: onnx.GraphProto): onnx.NodeProto[] => graph.node as onnx.NodeProto[];

export async function editOnnx(file: string, edit: (model: onnx.ModelProto) => void, outFile = file): Promise<void> {
  const model = onnx.ModelProto.decode(await fs.readFile(file));
  edit(model);
  await fs.writeFile(outFile, onnx.ModelProto.encode(model).finish());
}

/** Renames a graph input (or output) and every node reference to it. */
export function renameValue(model: onnx.ModelProto, from: string, to: string): void {
  const graph = graphOf(model);
  for (const v of [...graph.input, ...graph.output]) if (v.name === from) v.name = to;
  for (const node of nodesOf(graph)) {
    node.input = node.input.map((n) => (n === from ? to : n));
    node.output = node.output.map((n) => (n === from ? to : n));
  }
}

export function setElemType(model: onnx.ModelProto, name: string, elemType: onnx.TensorProto.DataType): void {
  const graph = graphOf(model);
  const v = [...graph.input, ...graph.output].find((x) => x.name === name);
  if (!v?.type?.tensorType) throw new Error(`no tensor value ${name}`);
  v.type.tensorType.elemType = elemType;
}

/**
 * Makes a `_fp16`-style I/O variant: every float32 graph input/output becomes float16 at the boundary, with
 * Cast nodes inside, the way some fp16 exports present themselves to the runtime.
 */
export function float16Io(model: onnx.ModelProto): void {
  const graph = graphOf(model);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const HALF = onnx.TensorProto.DataType.FLOAT16;
  const casts: onnx.INodeProto[] = [];
  for (const input of graph.input) {
    if (input.type?.tensorType?.elemType !== FLOAT) continue;
    const name = String(input.name);
    const inner = `${name}__f32`;
    for (const node of nodesOf(graph)) node.input = node.input.map((n) => (n === input.name ? inner : n));
    casts.push({ opType: 'Cast', input: [name], output: [inner], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] });
    input.type.tensorType.elemType = HALF;
  }
  const tail: onnx.INodeProto[] = [];
  for (const output of graph.output) {
    if (output.type?.tensorType?.elemType !== FLOAT) continue;
    const name = String(output.name);
    const inner = `${name}__f32`;
    for (const node of nodesOf(graph)) node.output = node.output.map((n) => (n === output.name ? inner : n));
    for (const node of nodesOf(graph)) node.input = node.input.map((n) => (n === output.name ? inner : n));
    tail.push({ opType: 'Cast', input: [inner], output: [name], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: HALF }] });
    output.type.tensorType.elemType = HALF;
  }
  graph.node = [...casts, ...nodesOf(graph), ...tail].map((n) => onnx.NodeProto.create(n));
}

/** Copies a model folder (recursively) to a new place. */
export async function copyFolder(from: string, to: string): Promise<string> {
  await fs.cp(from, to, { recursive: true });
  return path.resolve(to);
}
