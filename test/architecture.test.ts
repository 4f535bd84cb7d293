/**
 * The import rules of the README's architecture section, checked on every relative import of the product code
 * (cli/, workflows/, activities/, workers/, infra/, lib/), plus: no two folders import each other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/paths';

const PRODUCT = ['cli', 'workflows', 'activities', 'workers', 'infra', 'lib'];

interface Import {
  from: string;
  /** repo-relative module path without extension, or the package name */
  to: string;
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/gm;

const imports: Import[] = PRODUCT.flatMap(tsFiles).flatMap((file) => {
  const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => {
    const spec = m[3] ?? m[4]!;
    const to = spec.startsWith('.') ? path.normalize(path.join(path.dirname(file), spec)).replace(/\.ts$/, '') : spec;
    return { from: file, to, typeOnly: m[2] !== undefined };
  });
});

/** cli, workflows, ..., or lib/<folder> (lib's root files: lib/errors, lib/reasons). */
function area(p: string): string {
  const [top, second] = p.split(path.sep);
  return top === 'lib' && second ? `lib/${second.replace(/\.ts$/, '')}` : top!;
}

const violations = (rule: (i: Import) => boolean) => imports.filter(rule).map((i) => `${i.from} -> ${i.to}`);

describe('architecture', () => {
  it('reads the imports it checks', () => {
    expect(imports.length).toBeGreaterThan(300);
    expect(imports.some((i) => i.from === path.join('workers', 'build.ts') && i.to === 'activities')).toBe(true);
  });

  it('cli/ never imports activities/', () => {
    expect(violations((i) => i.from.startsWith('cli') && i.to.startsWith('activities'))).toEqual([]);
  });

  it('lib/ imports no Temporal package and nothing outside lib/', () => {
    expect(violations((i) => i.from.startsWith('lib') && (i.to.startsWith('@temporalio/') || PRODUCT.filter((p) => p !== 'lib').some((p) => i.to.startsWith(p + path.sep) || i.to === p)))).toEqual([]);
  });

  it('workflows/ import values only from themselves, the Temporal workflow packages and lib/run/stages', () => {
    const allowed = (i: Import) =>
      i.typeOnly || i.to.startsWith('workflows') || i.to === '@temporalio/workflow' || i.to === '@temporalio/common' || i.to === path.join('lib', 'run', 'stages');
    expect(violations((i) => i.from.startsWith('workflows') && !allowed(i))).toEqual([]);
  });

  it('lib/run/stages.ts, bundled into workflows, has no value imports', () => {
    expect(violations((i) => i.from === path.join('lib', 'run', 'stages.ts') && !i.typeOnly)).toEqual([]);
  });

  it('the folders import each other without a loop (lib/ counted per sub-folder)', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of imports.filter((x) => PRODUCT.includes(x.to.split(path.sep)[0]!))) {
      const [a, b] = [area(i.from), area(i.to)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
    const loops: string[] = [];
    const visit = (node: string, trail: string[]): void => {
      for (const next of edges.get(node) ?? []) {
        if (trail.includes(next)) loops.push([...trail.slice(trail.indexOf(next)), next].join(' -> '));
        else visit(next, [...trail, next]);
      }
    };
    for (const start of edges.keys()) visit(start, [start]);
    expect(loops).toEqual([]);
    expect(edges.get('lib/pipeline')).toContain('lib/report'); // finalize calls the report, never the reverse
  });
});
