/**
 * CLIP-style dual encoder (split export: onnx/vision_model.onnx + onnx/text_model.onnx) behind the ClipScorer
 * contract. Embeddings are L2-normalised here, so a dot product is the cosine the paper's scores use.
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../errors';
import { FLOAT_TYPES, ModelFolder, staticDim, type LoadedSession, type SessionSignature } from './model-folder';
import { loadImageProcessor, outputSize, preprocessImage, stackPixels, type DecodeOptions, type ImageProcessorSpec } from './preprocess';
import { floatInputType, floatTensor, int64Tensor, readFloats, runSession } from './session';
import { l2NormalizeInPlace } from './similarity';
import { TextTokenizer } from './tokenizer';
import type { ClipScorer, PixelTensor, RuntimeOptions } from './types';

export interface LoadClipOptions extends RuntimeOptions, DecodeOptions {
  /** Largest batch per session.run call (default 64); bigger inputs are split. */
  maxBatchSize?: number;
}

const clipConfigSchema = z.object({
  model_type: z.string(),
  projection_dim: z.number().int().positive().optional(),
  text_config: z.object({ max_position_embeddings: z.number().int().positive().optional(), hidden_size: z.number().int().positive().optional() }).optional(),
});

/** Output names per family: CLIP exports project (`*_embeds`), SigLIP exports pool (`pooler_output`). */
const FAMILY_OUTPUTS: Record<string, { image: string; text: string }> = {
  clip: { image: 'image_embeds', text: 'text_embeds' },
  siglip: { image: 'pooler_output', text: 'pooler_output' },
};

export async function loadClip(dir: string, opts: LoadClipOptions = {}): Promise<ClipScorer> {
  const folder = await ModelFolder.open(dir, opts.dtype);
  const config = await folder.readJson('config.json', clipConfigSchema);
  const outputs = FAMILY_OUTPUTS[config.model_type];
  if (!outputs) {
    throw new InputError('BadModel', `${folder.display('config.json')}: model_type "${config.model_type}" is not a supported dual encoder (${Object.keys(FAMILY_OUTPUTS).join(', ')})`);
  }
  const spec = await loadImageProcessor(folder);
  const size = outputSize(spec);
  if (!size) throw new InputError('BadModel', `${folder.display('preprocessor_config.json')}: must produce a fixed image size (crop_size or an exact size)`);
  const tokenizer = await TextTokenizer.load(folder);
  const maxTextLength = config.text_config?.max_position_embeddings ?? 77;
  const projection = config.projection_dim;

  const visionSig: SessionSignature = {
    inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: size[0], 3: size[1] } }],
    outputs: [{ name: outputs.image, types: FLOAT_TYPES, rank: 2, ...(projection && config.model_type === 'clip' ? { dims: { 1: projection } } : {}) }],
  };
  const textSig: SessionSignature = {
    inputs: [
      { name: 'input_ids', types: ['int64'], rank: 2 },
      { name: 'attention_mask', types: ['int64'], rank: 2, optional: true },
    ],
    outputs: [{ name: outputs.text, types: FLOAT_TYPES, rank: 2, ...(projection && config.model_type === 'clip' ? { dims: { 1: projection } } : {}) }],
  };
  const vision = await folder.session('vision_model', visionSig, opts);
  let text: LoadedSession;
  try {
    text = await folder.session('text_model', textSig, opts);
  } catch (err) {
    await vision.session.release();
    throw err;
  }
  const scorer = new OnnxClipScorer(folder.dir, vision, text, tokenizer, spec, outputs, {
    maxBatchSize: opts.maxBatchSize ?? 64,
    maxTextLength,
    // SigLIP was trained on texts padded to the full context and has no attention mask.
    padTo: config.model_type === 'siglip' ? maxTextLength : undefined,
    size,
    decode: { maxPixels: opts.maxPixels, failOn: opts.failOn, resampler: opts.resampler },
  });
  const declared = staticDim(vision.session, outputs.image, 'output', 1) ?? (config.model_type === 'clip' ? projection : undefined);
  await scorer.init(declared);
  return scorer;
}

interface ScorerSettings {
  maxBatchSize: number;
  maxTextLength: number;
  padTo: number | undefined;
  size: [number, number];
  decode: DecodeOptions;
}

class OnnxClipScorer implements ClipScorer {
  private embedDim = 0;

  constructor(
    readonly modelDir: string,
    private readonly vision: LoadedSession,
    private readonly text: LoadedSession,
    private readonly tokenizer: TextTokenizer,
    private readonly spec: ImageProcessorSpec,
    private readonly outputs: { image: string; text: string },
    private readonly settings: ScorerSettings,
  ) {}

  get dim(): number {
    return this.embedDim;
  }

  /** Fixes the embedding width: declared by the model/config, else measured on one short text. */
  async init(declared: number | undefined): Promise<void> {
    this.embedDim = declared ?? (await this.runText([''])).dims[1];
  }

  preprocess(image: Buffer): Promise<PixelTensor> {
    return preprocessImage(image, this.spec, this.settings.decode);
  }

  async embedImages(pixels: PixelTensor[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < pixels.length; i += this.settings.maxBatchSize) {
      const batch = stackPixels(pixels.slice(i, i + this.settings.maxBatchSize), this.settings.size);
      const { session, file } = this.vision;
      const feeds = { pixel_values: floatTensor(floatInputType(session, 'pixel_values'), batch.data, batch.dims) };
      const result = await runSession(session, file, feeds);
      out.push(...this.rows(result[this.outputs.image], batch.dims[0], file));
    }
    return out;
  }

  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.settings.maxBatchSize) {
      const { result, batch } = await this.runText(texts.slice(i, i + this.settings.maxBatchSize));
      out.push(...this.rows(result, batch, this.text.file));
    }
    return out;
  }

  private async runText(texts: string[]): Promise<{ result: ort.Tensor | undefined; batch: number; dims: readonly number[] }> {
    const enc = this.tokenizer.encodeBatch(texts, { maxLength: this.settings.maxTextLength, padTo: this.settings.padTo });
    const { session, file } = this.text;
    const feeds: Record<string, ort.Tensor> = { input_ids: int64Tensor(enc.ids, [enc.batch, enc.length]) };
    if (session.inputNames.includes('attention_mask')) feeds['attention_mask'] = int64Tensor(enc.attentionMask, [enc.batch, enc.length]);
    const result = (await runSession(session, file, feeds))[this.outputs.text];
    return { result, batch: enc.batch, dims: result?.dims ?? [] };
  }

  /** Splits a [batch, dim] output into L2-normalised rows. */
  private rows(tensor: ort.Tensor | undefined, batch: number, file: string): Float32Array[] {
    if (!tensor) throw new InputError('BadModel', `${file}: the embedding output is missing from the run result`);
    const [n, d] = tensor.dims;
    if (tensor.dims.length !== 2 || n !== batch || (this.embedDim !== 0 && d !== this.embedDim)) {
      throw new InputError('BadModel', `${file}: embedding output has shape [${tensor.dims.join(', ')}], expected [${batch}, ${this.embedDim || 'dim'}]`);
    }
    const data = readFloats(tensor, file);
    return Array.from({ length: batch }, (_, b) => l2NormalizeInPlace(data.slice(b * d!, (b + 1) * d!)));
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.session.release(), this.text.session.release()]);
  }
}
