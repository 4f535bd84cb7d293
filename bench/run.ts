/** `npm run bench`: each benchmark prints throughput beside a reference measured in the same run, as ratios. */
import { benchPreprocess } from './preprocess';

async function main(): Promise<void> {
  const r = await benchPreprocess();
  const ratio = (a: number | null, b: number | null) => (a && b ? (a / b).toFixed(2) + '×' : 'n/a');
  const f = (v: number | null) => (v === null ? 'n/a (python3 with PIL + numpy not found)' : `${v.toFixed(1)} images/s`);
  process.stdout.write(
    [
      `decode + CLIP preprocessing, ${r.images} JPEGs (384–1024 px):`,
      `  sharp (ours)             ${f(r.sharp_preprocess_ips)}`,
      `  sharp decode only (ref)  ${f(r.sharp_decode_only_ips)}   ours / decode-only = ${ratio(r.sharp_preprocess_ips, r.sharp_decode_only_ips)}`,
      `  Pillow + NumPy (ref)     ${f(r.pillow_numpy_ips)}   ours / Pillow = ${ratio(r.sharp_preprocess_ips, r.pillow_numpy_ips)} (goal ≥ 2×)`,
    ].join('\n') + '\n',
  );
}

void main();
