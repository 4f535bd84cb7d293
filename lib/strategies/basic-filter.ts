/**
 * DataComp's basic filter: English caption, more than 2 words and more than 5 characters, shorter image side
 * >= 200 px, aspect ratio <= 3 (on the ORIGINAL image size img2dataset recorded). Applied to the caption a
 * sample would be kept with (the raw one for raw presets, as in DataComp); thresholds stay pool-wide.
 */
import { SELECTION_REASONS as WHY } from '../reasons';
import { detectLanguage } from './language-id';

export interface BasicFilterInput {
  caption: string;
  width: number | null;
  height: number | null;
}

export const BASIC_FILTER_RULES = {
  minWords: 3,
  minChars: 6,
  minSide: 200,
  maxAspect: 3,
} as const;

/** The first rule a sample breaks (a reason code for the decision parquet), or null when it passes. */
export async function basicFilterReason(s: BasicFilterInput): Promise<string | null> {
  const caption = s.caption.trim();
  if (caption.split(/\s+/).filter(Boolean).length < BASIC_FILTER_RULES.minWords) return WHY.filter('basic', 'few_words');
  if (caption.length < BASIC_FILTER_RULES.minChars) return WHY.filter('basic', 'short_caption');
  if (s.width !== null && s.height !== null) {
    if (Math.min(s.width, s.height) < BASIC_FILTER_RULES.minSide) return WHY.filter('basic', 'small_image');
    if (Math.max(s.width, s.height) / Math.max(1, Math.min(s.width, s.height)) > BASIC_FILTER_RULES.maxAspect) return WHY.filter('basic', 'aspect_ratio');
  }
  if ((await detectLanguage(caption)) !== 'en') return WHY.filter('basic', 'not_english');
  return null;
}
