/**
 * Builds small ONNX graphs in memory with the `onnx-proto` protobuf definitions (opset 17, IR version 8): the tiny
 * random-weight test models (lib/models/tiny), the device probe (lib/models/session.ts) and the nearest-centroid
 * graph (lib/clusters/nearest.ts). Values are referred to by name, like in ONNX itself. Just big enough for those:
 * no shape inference, no checker (onnxruntime checks the graph when it loads it).
 */
import { onnx } from 'onnx-proto';

export const OPSET = 17;
export const IR_VERSION = 8;

export type ElemType = 'float32' | 'int64' | 'bool' | 'float64' | 'float16' | 'int32';
/** A static size or a symbolic (named) dimension such as `batch_size`. */
export type Dim = number | string;

export const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  float64: onnx.TensorProto.DataType.DOUBLE,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
};

/** The builder's name of an ONNX element type, or undefined for the types it does not build. */
export function elemTypeOf(dataType: number | null | undefined): ElemType | undefined {
  return (Object.keys(ELEM) as ElemType[]).find((k) => ELEM[k] === dataType);
}

/** Explicitly typed attribute values: ONNX distinguishes INT from FLOAT, JS numbers do not. */
export type Attr =
  | { int: number }
  | { float: number }
  | { ints: number[] }
  | { tensor: onnx.ITensorProto }
  | { graph: onnx.IGraphProto };

export const attr = {
  int: (v: number): Attr => ({ int: v }),
  float: (v: number): Attr => ({ float: v }),
  ints: (v: number[]): Attr => ({ ints: v }),
  graph: (g: onnx.IGraphProto): Attr => ({ graph: g }),
  tensor: (t: onnx.ITensorProto): Attr => ({ tensor: t }),
};

function toAttribute(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('int' in a) return { name, type: T.INT, i: a.int };
  if ('float' in a) return { name, type: T.FLOAT, f: a.float };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('tensor' in a) return { name, type: T.TENSOR, t: a.tensor };
  return { name, type: T.GRAPH, g: a.graph };
}

export function valueInfo(name: string, elem: ElemType, shape?: Dim[]): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: ELEM[elem] };
  if (shape) {
    tensorType.shape = { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  }
  return { name, type: { tensorType } };
}

/** float16 tensors are given as their IEEE half bits (Uint16Array). */
type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;

/**
 * The tensor's bytes, the little-endian layout ONNX `raw_data` expects (typed arrays are little-endian on every
 * platform onnxruntime-node ships for). A copy by default; `copy: false` keeps a view, which spares a second copy
 * of a large weight (hundreds of MB of centroids) but reads `data` as it is when the model is encoded.
 */
function rawBytes(data: TensorData, copy: boolean): Uint8Array {
  if (!copy) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export function tensorProto(name: string, elem: ElemType, dims: number[], data: TensorData, { copy = true }: { copy?: boolean } = {}): onnx.ITensorProto {
  return { name, dataType: ELEM[elem], dims, rawData: rawBytes(data, copy) };
}

/**
 * Builds one graph. Node outputs get unique generated names unless given; `output()` exposes an existing value
 * under a public name (through Identity when the names differ), which keeps the exported I/O names exact.
 */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(
    readonly name: string,
    /** Prefix for generated names, so subgraph values never clash with the parent graph's. */
    private readonly prefix = '',
  ) {}

  private fresh(hint: string): string {
    this.counter += 1;
    return `${this.prefix}${hint}_${this.counter}`;
  }

  /** A graph input; `shape` omitted leaves the rank unknown (a Loop body's carried values change shape). */
  input(name: string, elem: ElemType, shape?: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, shape));
    return name;
  }

  /** Declares `value` as a graph output named `name`; `shape` may be omitted in subgraphs. */
  output(value: string, name: string, elem: ElemType, shape?: Dim[]): string {
    if (value !== name) this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: this.fresh('out') });
    this.outputs.push(valueInfo(name, elem, shape));
    return name;
  }

  /** A named float32 weight stored as an initializer (`copy: false`: see rawBytes). */
  weight(name: string, dims: number[], data: Float32Array, opts: { copy?: boolean } = {}): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`weight ${name}: ${data.length} values for dims [${dims.join(',')}]`);
    this.initializers.push(tensorProto(`${this.prefix}${name}`, 'float32', dims, data, opts));
    return `${this.prefix}${name}`;
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const_i64');
    this.initializers.push(tensorProto(name, 'int64', dims, BigInt64Array.from(values.map((v) => BigInt(v)))));
    return name;
  }

  constF32(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const_f32');
    this.initializers.push(tensorProto(name, 'float32', dims, Float32Array.from(values)));
    return name;
  }

  /** Adds one node and returns its outputs (generated names unless `outputs` is given, e.g. a graph output's own name). */
  nodeN(opType: string, inputs: string[], nOutputs: number, attrs: Record<string, Attr> = {}, outputs?: string[]): string[] {
    const outs = outputs ?? Array.from({ length: nOutputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return outs;
  }

  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.nodeN(opType, inputs, 1, attrs)[0]!;
  }

  /** A constant of any element type (`data` as tensorProto takes it), as a generated initializer. */
  constant(elem: ElemType, dims: number[], data: TensorData): string {
    const name = this.fresh(`const_${elem}`);
    this.initializers.push(tensorProto(name, elem, dims, data));
    return name;
  }

  /** Appends nodes built elsewhere (e.g. an inlined model's, already renamed), in order. */
  addNodes(nodes: readonly onnx.INodeProto[]): void {
    this.nodes.push(...nodes);
  }

  /** Adds initializers built elsewhere under their own names. */
  addInitializers(tensors: readonly onnx.ITensorProto[]): void {
    this.initializers.push(...tensors);
  }

  toGraph(): onnx.IGraphProto {
    return {
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
    };
  }
}

/**
 * Serialises a graph as a standalone model (default ONNX domain, opset 17, IR 8). The producer defaults to the
 * tiny test models' name, which is part of their pinned bytes.
 */
export function encodeModel(graph: GraphBuilder, docString: string, producerName = 'recaption-tiny'): Uint8Array {
  return encodeModelWith(graph, { docString, producerName });
}

export interface ModelHeader {
  docString: string;
  producerName: string;
  /** default: the default ONNX domain at OPSET */
  opsetImport?: onnx.IOperatorSetIdProto[];
  irVersion?: number;
  /** model-local functions the graph's nodes call */
  functions?: onnx.IFunctionProto[];
}

/** Serialises a graph as a standalone model with the given opsets and IR version (graphs that embed other models' nodes). */
export function encodeModelWith(graph: GraphBuilder, h: ModelHeader): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: h.irVersion ?? IR_VERSION,
    opsetImport: h.opsetImport ?? [{ domain: '', version: OPSET }],
    producerName: h.producerName,
    producerVersion: '1',
    docString: h.docString,
    graph: graph.toGraph(),
    ...(h.functions && h.functions.length > 0 ? { functions: h.functions } : {}),
  });
  return onnx.ModelProto.encode(model).finish();
}
