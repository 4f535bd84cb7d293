/**
 * The run configuration: YAML on disk, validated with zod before anything starts. Every field has the
 * paper's default where the paper has one, so a minimal config names only input, output and models.
 */
import { z } from 'zod';
import { CUSTOM_PRESET, PRESET_NAMES, presetNeedsImageCluster } from '../strategies/presets';
import { defaultTaskQueue } from './task-queues';
import { failureBudgetSchema } from './failure-budget';

/**
 * The paper's sampling for its released BLIP-2 captions (do_sample, top-K 50, temperature 0.75, 5–40 new tokens):
 * the defaults of a run config's `caption` section.
 */
export const PAPER_CAPTION_OPTIONS = { topK: 50, temperature: 0.75, minLength: 5, maxLength: 40, repetitionPenalty: 1 } as const;

const fraction = z.number().gt(0, 'must be > 0').lte(1, 'must be <= 1');

const gateSchema = z.union([
  z.object({ fraction }).strict(),
  z.object({ min: z.number().min(-1).max(1) }).strict(),
  z.object({ sameAs: z.enum(['raw', 'synthetic']) }).strict(),
  z.object({ all: z.literal(true) }).strict(),
]);

/**
 * A custom rule: which caption sources may be used and when (`fraction` of the pool, absolute `min` cosine,
 * `sameAs` the other source's threshold, or `all`), and which wins when both pass. E.g. the paper's filtered
 * mix is { raw: { fraction: 0.3 }, synthetic: { sameAs: raw }, prefer: raw }.
 */
const customRuleSchema = z
  .object({
    raw: gateSchema.optional(),
    synthetic: gateSchema.optional(),
    prefer: z.enum(['raw', 'synthetic']).default('raw'),
  })
  .strict()
  .refine((r) => r.raw || r.synthetic, { message: 'needs a gate for raw, synthetic or both' })
  .refine((r) => !(r.raw && 'sameAs' in r.raw && r.raw.sameAs === 'raw') && !(r.synthetic && 'sameAs' in r.synthetic && r.synthetic.sameAs === 'synthetic'), {
    message: 'a source cannot be sameAs itself',
  });

const modelSchema = z
  .object({
    /** Model folder in the Optimum / transformers.js export layout. */
    path: z.string().min(1, 'must name a model folder'),
    dtype: z.enum(['fp32', 'fp16', 'quantized']).default('fp32'),
  })
  .strict();

/** ONNX Runtime session options for every model of a run. None of them changes outputs beyond float rounding. */
export const sessionSchema = z
  .object({
    /** Threads inside one operator (ORT default: one per physical core). */
    intraOpNumThreads: z.number().int().positive().optional(),
    /** Threads across independent operators (only used by parallel execution). */
    interOpNumThreads: z.number().int().positive().optional(),
    graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
    /**
     * Local folder on the worker for optimised graphs: the first load saves ORT's optimised model there, later
     * loads (any run, any worker process on that machine) reuse it. Keyed by model bytes, ORT version, device and
     * level, so a changed model never takes a stale file.
     */
    optimizedModelCache: z.string().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    run: z
      .object({
        /** Run id: the same name with the same config resumes the run and skips committed work. */
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be 1-100 chars of letters, digits, ".", "_" or "-"'),
        /** Seed of the per-sample caption RNG (combined with each uid). */
        seed: z.number().int().nonnegative().default(0),
        /**
         * Shards that may fail as a whole (bad input, retries used up) — recorded under failures/ while the run goes
         * on — before the run stops with a summary: a count (5) or a percentage of the shards ("1%"). Changing it
         * never changes outputs, so a resumed run may raise it (lib/config/failure-budget.ts).
         */
        maxFailedShards: failureBudgetSchema,
      })
      .strict(),
    input: z
      .object({
        /** Folder (local or gs://) of img2dataset shards: {shard:08d}.tar (+ .parquet, _stats.json). */
        uri: z.string().min(1),
        /** Optional cap on the number of shards taken (in name order); useful for trial runs. */
        maxShards: z.number().int().positive().optional(),
        /**
         * Samples are named by their DataComp uid (32 hex digits in the `.json`): one without is recorded as failed
         * (missing_uid / bad_uid). false: a pool without uids (plain img2dataset); its samples are named by key and
         * subset.npy, which holds uids, lists none of them.
         */
        requireUid: z.boolean().default(true),
      })
      .strict(),
    output: z
      .object({
        /** Folder (local or gs://) under which the run writes `<run.name>/...`. */
        uri: z.string().min(1),
        /** Also reshard the kept samples into `resharded/{i:08d}.tar` of exactly this many samples (last: the rest). */
        samplesPerShard: z.number().int().positive().optional(),
      })
      .strict(),
    strategy: z
      .object({
        /** A paper preset (`recaption presets`), or `custom` with the rule in `custom`. */
        preset: z.enum([CUSTOM_PRESET, ...PRESET_NAMES] as [string, ...string[]]),
        /** Top fraction for `mix-threshold` (Fig. 2 sweep); ignored by the fixed presets. */
        fraction: fraction.optional(),
        custom: customRuleSchema.optional(),
      })
      .strict(),
    models: z
      .object({
        captioner: modelSchema.extend({
          /** Florence-2: the captioning task (`<CAPTION>`, `<DETAILED_CAPTION>`, `<MORE_DETAILED_CAPTION>`). */
          taskPrompt: z.string().min(1).optional(),
          /** BLIP-2-style prefix LMs: text the caption continues (e.g. "a photo of"); the caption excludes it. */
          textPrompt: z.string().min(1).optional(),
        }),
        clip: modelSchema,
        /** Where models run. A worker started with `--device` overrides it for the activities it runs. */
        device: z
          .string()
          .regex(/^(cpu|cuda:\d+)$/, 'must be "cpu" or "cuda:N"')
          .default('cpu'),
        session: sessionSchema.prefault({}),
        /** Deprecated alias of session.intraOpNumThreads (moved there when parsed). */
        intraOpNumThreads: z.number().int().positive().optional(),
      })
      .strict()
      .refine((m) => m.intraOpNumThreads === undefined || m.session.intraOpNumThreads === undefined || m.intraOpNumThreads === m.session.intraOpNumThreads, {
        message: 'deprecated alias of session.intraOpNumThreads, and the two disagree: keep session.intraOpNumThreads only',
        path: ['intraOpNumThreads'],
      })
      .transform(({ intraOpNumThreads, ...m }) => ({ ...m, session: { ...m.session, intraOpNumThreads: m.session.intraOpNumThreads ?? intraOpNumThreads } })),
    caption: z
      .object({
        topK: z.number().int().positive().default(PAPER_CAPTION_OPTIONS.topK),
        temperature: z.number().positive().default(PAPER_CAPTION_OPTIONS.temperature),
        minLength: z.number().int().nonnegative().default(PAPER_CAPTION_OPTIONS.minLength),
        maxLength: z.number().int().positive().default(PAPER_CAPTION_OPTIONS.maxLength),
        repetitionPenalty: z.number().positive().default(PAPER_CAPTION_OPTIONS.repetitionPenalty),
        batchSize: z.number().int().positive().default(16),
        /** Captions sampled per image (each with its own seed); candidate 0 is what a one-candidate run writes. */
        candidates: z.number().int().min(1).max(64).default(1),
        /** With several candidates: `clip` keeps the one with the highest CLIP score (best-of-N), `first` keeps candidate 0. */
        pick: z.enum(['clip', 'first']).default('clip'),
      })
      .strict()
      .refine((c) => c.minLength <= c.maxLength, { message: 'minLength must be <= maxLength', path: ['minLength'] })
      .prefault({}),
    score: z
      .object({
        batchSize: z.number().int().positive().default(64),
        /**
         * Where s_raw comes from: `compute` (our CLIP model) or `precomputed` (a column of each shard's sibling
         * parquet, e.g. DataComp's clip_l14_similarity_score). With `precomputed`, raw thresholds are computed
         * over every row of those parquets — the metadata pool, as DataComp's apply_filter does.
         */
        rawScore: z.enum(['compute', 'precomputed']).default('compute'),
        precomputedColumn: z.string().min(1).default('clip_l14_similarity_score'),
      })
      .strict()
      .prefault({}),
    filters: z
      .object({
        /** DataComp's basic filter (English, > 2 words, > 5 chars, shorter side >= 200, aspect <= 3). */
        basic: z.boolean().default(false),
        /**
         * DataComp's image-cluster filter: keep a sample when its CLIP image embedding's nearest centroid is in the
         * target set (e.g. the clusters hit by ImageNet-1k). Used by the *-in1k presets; see lib/clusters/README.md.
         */
        imageCluster: z
          .object({
            /** `.npy` float32/float16 [K, D] centroids (local or gs://). */
            centroids: z.string().min(1),
            /** `.npy` int array or text file (one centroid id per line) of the target clusters. */
            target: z.string().min(1),
            /** DataComp uses the centroids as stored ('as-is'); 'l2' normalises them first (cosine). */
            centroidNorm: z.enum(['as-is', 'l2']).default('as-is'),
            /**
             * false: assign every image its cluster (an annotation later `-in1k` runs reuse) without filtering this
             * run. The `-in1k` presets need true.
             */
            apply: z.boolean().default(true),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Annotations: captions, CLIP scores and image clusters, computed once per (input shard, model, options) by the
     * GPU stage and shared by every run that uses the same annotations folder (lib/run/annotations.ts).
     */
    annotations: z
      .object({
        /** Folder (local or gs://) of the shared annotations. Default: `<output.uri>/_annotations`. */
        uri: z.string().min(1).optional(),
        /**
         * Annotate more than this run's strategy needs, for later runs (other presets, sweeps) to reuse:
         * `captions`, `rawScores`, `syntheticScores` (image clusters: `filters.imageCluster` with `apply: false`).
         */
        include: z.array(z.enum(['captions', 'rawScores', 'syntheticScores'])).default([]),
        /** Samples per committed chunk of a shard's annotations: a preempted GPU loses at most this much work. */
        chunkSize: z.number().int().min(1).default(1000),
      })
      .strict()
      .prefault({}),
    image: z
      .object({
        /** Decompression-bomb guard (PIL's DecompressionBombError limit): bigger images are skipped as `too_many_pixels`. */
        maxPixels: z.number().int().positive().default(178_956_970),
        /** 'sharp' (libvips, fast) or 'pillow' (exact port of Pillow's resampling, slower; see lib/models/preprocess). */
        resampler: z.enum(['sharp', 'pillow']).default('sharp'),
      })
      .strict()
      .prefault({}),
    temporal: z
      .object({
        /** Default: RECAPTION_GPU_QUEUE / RECAPTION_CPU_QUEUE, else recaption-gpu / recaption-cpu (lib/config/task-queues). */
        gpuTaskQueue: z.string().min(1).default(() => defaultTaskQueue('gpu')),
        cpuTaskQueue: z.string().min(1).default(() => defaultTaskQueue('cpu')),
        /** Shards per child workflow; keeps each history far below Temporal's limits. */
        pageSize: z.number().int().min(1).max(1000).default(500),
        /** Child workflows (pages) running at once. */
        maxConcurrentPages: z.number().int().min(1).max(100).default(4),
        /** Stage activities a page keeps in flight at once (well under the 2,000 pending cap). */
        maxConcurrentShards: z.number().int().min(1).max(1000).default(64),
        /** A stage that stops heartbeating this long is retried elsewhere (its worker is presumed dead). */
        heartbeatTimeout: z
          .string()
          .regex(/^\d+(ms|s|m|h)$/, 'must be a duration like "30s", "2m"')
          .default('2m'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.strategy.preset === CUSTOM_PRESET && !c.strategy.custom) {
      ctx.addIssue({ code: 'custom', path: ['strategy', 'custom'], message: 'is required by preset custom' });
    }
    if (c.strategy.preset !== CUSTOM_PRESET && c.strategy.custom) {
      ctx.addIssue({ code: 'custom', path: ['strategy', 'preset'], message: 'must be "custom" when strategy.custom is given' });
    }
    if (presetNeedsImageCluster(c.strategy.preset) && !c.filters.imageCluster) {
      ctx.addIssue({ code: 'custom', path: ['filters', 'imageCluster'], message: `is required by preset ${c.strategy.preset} (centroids + target)` });
    }
    if (presetNeedsImageCluster(c.strategy.preset) && c.filters.imageCluster?.apply === false) {
      ctx.addIssue({ code: 'custom', path: ['filters', 'imageCluster', 'apply'], message: `must be true for preset ${c.strategy.preset}` });
    }
    if (c.strategy.preset === 'mix-threshold' && c.strategy.fraction === undefined) {
      ctx.addIssue({ code: 'custom', path: ['strategy', 'fraction'], message: 'is required by preset mix-threshold' });
    }
  });

export type RunConfig = z.infer<typeof configSchema>;
export type RunConfigInput = z.input<typeof configSchema>;
