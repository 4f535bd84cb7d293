/**
 * CLIP-style dual encoder behind the ClipScorer contract, from either public export layout: split
 * (onnx/vision_model.onnx + onnx/text_model.onnx) or joint (onnx/model.onnx, cut into its two towers at load by
 * clip-joint.ts). Embeddings are L2-normalised here, so a dot product is the cosine the paper's scores use.
 */
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../errors';
import { loadJointParts } from './clip-joint';
import { FLOAT_TYPES, ModelFolder, onnxFileName, staticDim, type LoadedSession, type SessionSignature, type TensorSpec } from './model-folder';
import { batchPixels } from './pixel-batch';
import { loadImageProcessor, outputSize, preprocessDecoded, preprocessImage, type DecodedImage, type DecodeOptions, type ImageProcessorSpec } from './preprocess';
import { floatInputType, readFloats, runSession } from './session';
import { l2NormalizeInPlace } from './similarity';
import { encodeTexts, tokenRows } from './text-batch';
import { TextTokenizer } from './tokenizer';
import { checkTokenizerFits } from './tokenizer-check';
import type { ClipScorer, ImageRecipe, PixelTensor, RuntimeOptions, TextRecipe, TokenBatch } from './types';

export interface LoadClipOptions extends RuntimeOptions, DecodeOptions {
  /** Largest batch per session.run call (default 64); bigger inputs are split. */
  maxBatchSize?: number;
}

const clipConfigSchema = z.object({
  model_type: z.string(),
  projection_dim: z.number().int().positive().optional(),
  text_config: z.object({ max_position_embeddings: z.number().int().positive().optional(), hidden_size: z.number().int().positive().optional(), vocab_size: z.number().int().positive().optional() }).optional(),
});

interface Family {
  /** embedding outputs of the split towers: CLIP exports project (`*_embeds`), SigLIP's pool (`pooler_output`) */
  split: { image: string; text: string };
  /**
   * Text context when config.json omits text_config.max_position_embeddings (HF drops values equal to the
   * class default: CLIPTextConfig 77, SiglipTextConfig 64).
   */
  context: number;
  /** SigLIP was trained on texts padded to the full context (its processor pads to max_length) and has no mask. */
  padToContext: boolean;
}

const FAMILIES: Record<string, Family> = {
  clip: { split: { image: 'image_embeds', text: 'text_embeds' }, context: 77, padToContext: false },
  siglip: { split: { image: 'pooler_output', text: 'pooler_output' }, context: 64, padToContext: true },
};

/** The joint export's outputs are the same for both families (Optimum CLIPOnnxConfig / SiglipOnnxConfig). */
const JOINT_OUTPUTS = { image: 'image_embeds', text: 'text_embeds' };

type Layout = 'split' | 'joint';

/** Split when both tower files exist (cheaper to load), else joint; neither is a BadModel naming what is expected. */
async function pickLayout(folder: ModelFolder): Promise<Layout> {
  const split = [onnxFileName('vision_model', folder.dtype), onnxFileName('text_model', folder.dtype)];
  const joint = onnxFileName('model', folder.dtype);
  const present = await Promise.all(split.map((f) => folder.exists(f)));
  if (present.every(Boolean)) return 'split';
  if (await folder.exists(joint)) return 'joint';
  // One tower file alone: the split path's error names the missing one.
  if (present.some(Boolean)) return 'split';
  throw new InputError('BadModel', `${folder.dir}: no dual-encoder ONNX graphs for dtype ${folder.dtype}: expected ${split.join(' + ')} (split export) or ${joint} (joint export)`);
}

export async function loadClip(dir: string, opts: LoadClipOptions = {}): Promise<ClipScorer> {
  const folder = await ModelFolder.open(dir, opts.dtype);
  const config = await folder.readJson('config.json', clipConfigSchema);
  const family = FAMILIES[config.model_type];
  if (!family) {
    throw new InputError('BadModel', `${folder.display('config.json')}: model_type "${config.model_type}" is not a supported dual encoder (${Object.keys(FAMILIES).join(', ')})`);
  }
  const spec = await loadImageProcessor(folder);
  const size = outputSize(spec);
  if (!size) throw new InputError('BadModel', `${folder.display('preprocessor_config.json')}: must produce a fixed image size (crop_size or an exact size)`);
  const tokenizer = await TextTokenizer.load(folder);
  const maxTextLength = config.text_config?.max_position_embeddings ?? family.context;
  checkTokenizerFits(tokenizer, { vocab: [[config.text_config?.vocab_size, `${folder.display('config.json')} text_config.vocab_size`]], positions: [maxTextLength, `${folder.display('config.json')} text_config.max_position_embeddings`] }, folder.display('tokenizer.json'));
  const layout = await pickLayout(folder);
  const outputs = layout === 'split' ? family.split : JOINT_OUTPUTS;
  // CLIP projects both towers to projection_dim; SigLIP has no projection_dim (its width is the hidden size).
  const embedDims = config.model_type === 'clip' && config.projection_dim ? { dims: { 1: config.projection_dim } } : {};
  const embedding = (name: string): TensorSpec => ({ name, types: FLOAT_TYPES, rank: 2, ...embedDims });
  const visionSig: SessionSignature = {
    inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: size[0], 3: size[1] } }],
    outputs: [embedding(outputs.image)],
  };
  const textSig: SessionSignature = {
    inputs: [
      { name: 'input_ids', types: ['int64'], rank: 2 },
      { name: 'attention_mask', types: ['int64'], rank: 2, optional: true },
    ],
    outputs: [embedding(outputs.text)],
  };
  const [vision, text] = layout === 'split' ? await loadSplit(folder, visionSig, textSig, opts) : await loadJoint(folder, visionSig, textSig, opts);
  const scorer = new OnnxClipScorer(folder.dir, vision, text, tokenizer, spec, outputs, {
    maxBatchSize: opts.maxBatchSize ?? 64,
    maxTextLength,
    padTo: family.padToContext ? maxTextLength : undefined,
    size,
    decode: { maxPixels: opts.maxPixels, failOn: opts.failOn, resampler: opts.resampler },
  });
  const declared = staticDim(vision.session, outputs.image, 'output', 1) ?? (config.model_type === 'clip' ? config.projection_dim : undefined);
  try {
    await scorer.init(declared);
  } catch (err) {
    await scorer.release();
    throw err;
  }
  return scorer;
}

async function loadSplit(folder: ModelFolder, visionSig: SessionSignature, textSig: SessionSignature, opts: RuntimeOptions): Promise<[LoadedSession, LoadedSession]> {
  const vision = await folder.session('vision_model', visionSig, opts);
  try {
    return [vision, await folder.session('text_model', textSig, opts)];
  } catch (err) {
    await vision.session.release();
    throw err;
  }
}

async function loadJoint(folder: ModelFolder, visionSig: SessionSignature, textSig: SessionSignature, opts: RuntimeOptions): Promise<[LoadedSession, LoadedSession]> {
  const file = folder.display(onnxFileName('model', folder.dtype));
  const [vision, text] = await loadJointParts(
    file,
    [
      { output: visionSig.outputs[0]!.name, signature: visionSig },
      { output: textSig.outputs[0]!.name, signature: textSig },
    ],
    opts,
  );
  return [vision!, text!];
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

  preprocessDecoded(image: DecodedImage): Promise<PixelTensor> {
    return preprocessDecoded(image, this.spec, this.settings.decode);
  }

  get imageRecipe(): ImageRecipe {
    return { spec: this.spec, decode: this.settings.decode, size: this.settings.size, type: floatInputType(this.vision.session, 'pixel_values') };
  }

  get textRecipe(): TextRecipe {
    return { dir: this.modelDir, maxLength: this.settings.maxTextLength, ...(this.settings.padTo !== undefined ? { padTo: this.settings.padTo } : {}) };
  }

  async embedImages(pixels: PixelTensor[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const { session, file } = this.vision;
    const type = floatInputType(session, 'pixel_values');
    for (let i = 0; i < pixels.length; i += this.settings.maxBatchSize) {
      const group = pixels.slice(i, i + this.settings.maxBatchSize);
      // Stacked (and converted) here, unless prep threads handed over views of a batch made ahead: then fed as is.
      const { data, dims } = batchPixels(type, group, this.settings.size);
      const result = await runSession(session, file, { pixel_values: new ort.Tensor(type, data, dims) }, [this.outputs.image]);
      out.push(...this.rows(result[this.outputs.image], group.length, file));
    }
    return out;
  }

  async embedTexts(texts: string[]): Promise<Float32Array[]> {
    return this.embedTokens(encodeTexts(this.tokenizer, texts, this.textRecipe));
  }

  async embedTokens(tokens: TokenBatch): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < tokens.batch; i += this.settings.maxBatchSize) {
      const part = tokenRows(tokens, i, Math.min(tokens.batch, i + this.settings.maxBatchSize), this.settings.padTo);
      out.push(...this.rows(await this.runTokens(part), part.batch, this.text.file));
    }
    return out;
  }

  private async runText(texts: string[]): Promise<{ result: ort.Tensor | undefined; batch: number; dims: readonly number[] }> {
    const result = await this.runTokens(encodeTexts(this.tokenizer, texts, this.textRecipe));
    return { result, batch: texts.length, dims: result?.dims ?? [] };
  }

  private async runTokens(tokens: TokenBatch): Promise<ort.Tensor | undefined> {
    const { session, file } = this.text;
    const dims = [tokens.batch, tokens.length];
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', tokens.ids, dims) };
    if (session.inputNames.includes('attention_mask')) feeds['attention_mask'] = new ort.Tensor('int64', tokens.mask, dims);
    return (await runSession(session, file, feeds, [this.outputs.text]))[this.outputs.text];
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
