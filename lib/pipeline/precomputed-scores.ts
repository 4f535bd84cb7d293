/**
 * Raw-caption CLIP scores that the pool already has: DataComp's metadata carries `clip_l14_similarity_score`
 * (OpenAI ViT-L/14, the paper's scorer) and img2dataset copies it into each shard's sibling parquet when run
 * with `--save_additional_columns`. Reusing it saves a text-tower pass per sample and makes raw-score filters
 * match DataComp's own exactly.
 */
import { decodeParquetRows, parquetColumns } from '../formats/parquet';
import { InputError } from '../errors';
import { storageFor } from '../storage';
import type { PlannedShard } from '../run/plan';

export interface PrecomputedScores {
  /** uid (lower-case) → score, for every row of the sibling parquet that has one (failed downloads too). */
  byUid: Map<string, number>;
  /** key → score, for rows without a uid. */
  byKey: Map<string, number>;
}

export async function readPrecomputedScores(shard: PlannedShard, column: string): Promise<PrecomputedScores> {
  if (!shard.parquet) {
    throw new InputError(
      'MissingInput',
      `score.rawScore is "precomputed" but shard ${shard.tar} has no sibling ${shard.name}.parquet to read ${column} from`,
    );
  }
  const buf = await storageFor(shard.parquet).readBuffer(shard.parquet);
  const names = parquetColumns(buf, shard.parquet).map((c) => c.name);
  if (!names.includes(column)) {
    throw new InputError('MissingColumn', `${shard.parquet} has no column ${column} (it has: ${names.join(', ')}); set score.rawScore: compute`);
  }
  const rows = await decodeParquetRows(buf, { columns: ['uid', 'key', column].filter((c) => names.includes(c)), name: shard.parquet });
  const byUid = new Map<string, number>();
  const byKey = new Map<string, number>();
  for (const r of rows) {
    const v = r[column];
    if (typeof v !== 'number' || Number.isNaN(v)) continue;
    if (typeof r.uid === 'string') byUid.set(r.uid.toLowerCase(), v);
    else if (typeof r.key === 'string') byKey.set(r.key, v);
  }
  return { byUid, byKey };
}

export function lookupScore(p: PrecomputedScores, sample: { uid: string | null; key: string }): number | null {
  return (sample.uid ? p.byUid.get(sample.uid) : undefined) ?? p.byKey.get(sample.key) ?? null;
}
