/**
 * A caption family's merged decoder as its loader meets it, before the generation route is set up.
 *
 * The JS loop steps with a session of the decoder (one run per token); the generation graph inlines the decoder's
 * graph into its Loop body and needs no such session. Opening both would hold the decoder's weights twice (on a
 * GPU, twice the device memory of the largest part of the model). So the route decides how the decoder is read:
 * - JS loop forced: its session is opened here, and the signature checks read the session's metadata;
 * - graph or auto: the file is decoded once (the graph is built from it, its weights left in the file: see
 *   generation-graph/file-weights.ts) and the same checks read the interface the file declares — no session. The per-step session is opened later only if the JS loop is the route after
 *   all (auto's fallback), by the family's step sessions (caption-family.ts).
 */
import type { onnx } from 'onnx-proto';
import { declaredInterface } from '../clip-joint';
import { generationMode, readModel, type DecodedModel, type GenerationOptions } from '../generation-graph/graph-generator';
import { validateSession, type LoadedSession, type ModelFolder, type SessionSignature } from '../model-folder';
import type { SessionInfo } from '../session';
import type { OpenSession } from './caption-family';

/** The interface a session of `model` reports: its graph inputs (initializers excluded, as ORT lists them) and outputs. */
export function modelInterface(model: onnx.ModelProto): SessionInfo {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  return declaredInterface(
    (graph.input ?? []).filter((v) => !initializers.has(v.name ?? '')),
    graph.output ?? [],
  );
}

export class DecoderSource {
  private constructor(
    readonly file: string,
    /** the decoder's inputs and outputs: its session's, or as its file declares them */
    readonly info: SessionInfo,
    readonly mode: ReturnType<typeof generationMode>,
    /** the decoder's session, opened here only when the JS loop is forced */
    readonly session: LoadedSession | undefined,
    private model: onnx.ModelProto | undefined,
  ) {}

  /**
   * Opens `onnx/<name>.onnx` for the route `opts` asks for and checks it against `signature` and `verify` either way
   * (on a session opened through `open` when the JS loop is forced, else on the file's declarations).
   */
  static async open(
    folder: ModelFolder,
    name: string,
    opts: GenerationOptions,
    open: OpenSession,
    signature: (info: SessionInfo, file: string) => SessionSignature,
    verify?: (info: SessionInfo, file: string) => void,
  ): Promise<DecoderSource> {
    const mode = generationMode(opts);
    if (mode.mode === 'js') {
      const s = await open(name, signature, verify);
      return new DecoderSource(s.file, s.session, mode, s, undefined);
    }
    const { model, file } = await readModel(await folder.onnxFile(name));
    const info = modelInterface(model);
    validateSession(info, file, signature(info, file));
    verify?.(info, file);
    return new DecoderSource(file, info, mode, undefined, model);
  }

  /**
   * The decoded model, handed over once to the graph build: nothing here keeps it (nor the file's bytes its
   * initializers point into) alive after that.
   */
  takeModel(): DecodedModel {
    const model = this.model;
    if (!model) throw new Error(`${this.file}: the decoded decoder was already taken (or the JS loop was forced)`);
    this.model = undefined;
    return { model, file: this.file };
  }
}
