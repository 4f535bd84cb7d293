/**
 * The JSON files of a tiny model folder as HF writes them: the JSON layout, and the image steps every
 * preprocessor_config.json states (resize, rescale to [0, 1], normalise). Key order is part of the pinned bytes.
 */

/** JSON as HF's save_pretrained writes it: two-space indent, trailing newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Resize to `size` (HF's size dict: height/width or shortest_edge) with PIL filter `resample`. */
export function resizeTo(size: Record<string, number>, resample: number): Record<string, unknown> {
  return { do_resize: true, size, resample };
}

/** Rescale bytes to [0, 1], then normalise by channel `mean` and `std`. */
export function rescaleAndNormalize(mean: number[], std: number[]): Record<string, unknown> {
  return { do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: mean, image_std: std };
}
