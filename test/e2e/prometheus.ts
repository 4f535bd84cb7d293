/**
 * Scrape a Prometheus endpoint and read its samples, one per exposition line (`name{labels} value`): the series
 * as Prometheus stores them, histograms as their _bucket/_sum/_count. (parse-prometheus-text-format, the npm
 * parser, drops the labels, sum and count of histograms whose `le` label comes first, as prom-client writes.)
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export async function scrape(url: string): Promise<Sample[]> {
  return samplesOf(await scrapeText(url));
}

export async function scrapeText(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

/** Every series name the text declares (`# TYPE`), sampled or not yet: a histogram as its _bucket/_sum/_count. */
export function declaredNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap(([, name, type]) =>
    type === 'histogram' || type === 'summary' ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
  );
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function samplesOf(text: string): Sample[] {
  return text.split('\n').flatMap((line): Sample[] => {
    const m = line.startsWith('#') ? null : LINE.exec(line);
    if (!m) return [];
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(LABEL)].map(([, k, v]) => [k!, JSON.parse(`"${v}"`) as string]));
    return [{ name: m[1]!, labels, value: Number(m[3]) }];
  });
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return matching(samples, name, labels).reduce((a, s) => a + s.value, 0);
}

export function has(samples: Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return matching(samples, name, labels).length > 0;
}

function matching(samples: Sample[], name: string, labels: Record<string, string>): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
