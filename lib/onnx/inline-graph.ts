/**
 * Inlines one ONNX model's graph into another graph (e.g. a decoder into a Loop body): every value is renamed
 * consistently (prefix), including names inside nested If/Loop/Scan subgraphs that refer to outer values, the
 * model's inputs are bound to values of the host graph, and its initializers are handed back for the host to
 * place. A consistent renaming keeps the semantics: ONNX values are SSA names, and subgraphs see their outer
 * scope by name.
 */
import { onnx } from 'onnx-proto';

export interface InlineOptions {
  /** prefix of every value and node name of the inlined graph */
  prefix: string;
  /** the inlined graph's inputs, bound to values of the host graph (all of them must be bound) */
  inputs: Readonly<Record<string, string>>;
}

export interface Inlined {
  /** the graph's nodes, renamed, in their (topological) order */
  nodes: onnx.INodeProto[];
  /** the graph's initializers, renamed: the host places them (its own graph, or an outer one) */
  initializers: onnx.ITensorProto[];
  /** the graph's outputs by their original name -> the renamed value */
  outputs: Record<string, string>;
}

/** Why a graph cannot be inlined (a typed reason the caller can report). */
export class InlineError extends Error {
  override readonly name = 'InlineError';
}

/**
 * Inlines `graph`. Its value_info is dropped (ORT infers shapes again in the host), and so are sparse
 * initializers (refused: none of the exports this is for has them).
 */
export function inlineGraph(graph: onnx.IGraphProto, o: InlineOptions): Inlined {
  if ((graph.sparseInitializer ?? []).length > 0) throw new InlineError(`graph ${graph.name ?? ''} has sparse initializers`);
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const unbound = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !initNames.has(n) && !(n in o.inputs));
  if (unbound.length > 0) throw new InlineError(`input(s) ${unbound.join(', ')} cannot be fed inside the generation graph`);

  const rename = (name: string | null | undefined): string => {
    if (!name) return ''; // an omitted optional input/output stays omitted
    // A bound input wins over an initializer of the same name (old IRs list initializers as inputs too).
    if (name in o.inputs && !initNames.has(name)) return o.inputs[name]!;
    return `${o.prefix}${name}`;
  };
  const nodes = (graph.node ?? []).map((n) => renameNode(n, rename, o.prefix));
  const initializers = (graph.initializer ?? []).map((t) => ({ ...t, name: rename(t.name) }));
  const outputs: Record<string, string> = {};
  for (const v of graph.output ?? []) outputs[v.name ?? ''] = rename(v.name);
  return { nodes, initializers, outputs };
}

function renameNode(n: onnx.INodeProto, rename: (name: string | null | undefined) => string, prefix: string): onnx.INodeProto {
  return {
    ...n,
    name: n.name ? `${prefix}${n.name}` : n.name,
    input: (n.input ?? []).map(rename),
    output: (n.output ?? []).map(rename),
    attribute: (n.attribute ?? []).map((a) => {
      if (!a.g && !(a.graphs && a.graphs.length > 0)) return a;
      return { ...a, ...(a.g ? { g: renameSubgraph(a.g, rename, prefix) } : {}), ...(a.graphs && a.graphs.length > 0 ? { graphs: a.graphs.map((g) => renameSubgraph(g, rename, prefix)) } : {}) };
    }),
  };
}

/** A nested subgraph with every name renamed the same way: its own values and its outer-scope references alike. */
function renameSubgraph(g: onnx.IGraphProto, rename: (name: string | null | undefined) => string, prefix: string): onnx.IGraphProto {
  const info = (v: onnx.IValueInfoProto): onnx.IValueInfoProto => ({ ...v, name: rename(v.name) });
  return {
    ...g,
    name: g.name ? `${prefix}${g.name}` : g.name,
    node: (g.node ?? []).map((n) => renameNode(n, rename, prefix)),
    input: (g.input ?? []).map(info),
    output: (g.output ?? []).map(info),
    initializer: (g.initializer ?? []).map((t) => ({ ...t, name: rename(t.name) })),
    valueInfo: [],
    sparseInitializer: (g.sparseInitializer ?? []).map((s) => ({ ...s, values: s.values ? { ...s.values, name: rename(s.values.name) } : s.values })),
  };
}
