/**
 * Which processes load the model runtime: CPU workers (workflows, plan, thresholds, select, write, finalize) must
 * not load ONNX Runtime or sharp; the GPU side does. Each case requires modules in a fresh Node process and
 * lists the native model packages it ended up loading.
 */
import { execFileSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/paths';

function nativeModelPackagesLoadedBy(modules: string[]): string[] {
  const script = [
    "require('tsx/cjs');",
    ...modules.map((m) => `require(${JSON.stringify(m)});`),
    'const hits = new Set();',
    'for (const k of Object.keys(require.cache)) { const m = /node_modules[\\\\/](onnxruntime-node|sharp)[\\\\/]/.exec(k); if (m) hits.add(m[1]); }',
    'process.stdout.write(JSON.stringify([...hits].sort()));',
  ].join('\n');
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: REPO_ROOT, encoding: 'utf8' })) as string[];
}

describe('the model runtime loads only where models run', () => {
  it('a CPU worker (builder, activities, select and write stages) loads neither ONNX Runtime nor sharp', () => {
    expect(nativeModelPackagesLoadedBy(['./workers/build', './activities', './lib/pipeline/select-stage', './lib/pipeline/write-stage', './lib/pipeline/finalize-stage'])).toEqual([]);
  });

  it('the GPU stages\' models do load them', () => {
    expect(nativeModelPackagesLoadedBy(['./lib/pipeline/stage-models'])).toEqual(['onnxruntime-node', 'sharp']);
  });
});
