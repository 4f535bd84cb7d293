/**
 * Which processes load the model runtime: CPU workers (workflows, plan, thresholds, select, write, finalize) must
 * not load ONNX Runtime — they may decode images with sharp (the select stage indexes samples no run has
 * annotated; the report draws thumbnails); the GPU side loads both. Each case requires modules in a fresh Node
 * process and lists the native packages it ended up loading.
 */
import { execFileSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/paths';

function nativePackagesLoadedBy(modules: string[]): string[] {
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
  it('a CPU worker (builder, activities, select, write and finalize stages) does not load ONNX Runtime', () => {
    const loaded = nativePackagesLoadedBy(['./workers/build', './activities', './lib/pipeline/select-stage', './lib/pipeline/write-stage', './lib/pipeline/finalize-stage']);
    expect(loaded).not.toContain('onnxruntime-node');
  });

  it("the annotate stage's models do load it", () => {
    expect(nativePackagesLoadedBy(['./lib/pipeline/stage-models'])).toEqual(['onnxruntime-node', 'sharp']);
  });
});
