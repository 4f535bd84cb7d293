/**
 * Finds (or builds once, then caches) the Go-built tools the project runs beside Node: the Temporal CLI
 * (dev server + Web UI), fake-gcs-server (GCS emulator for tests) and kustomize (renders infra/k8s). Pinned versions: temporal v1.5.1 is the
 * last tag that `go install` can build (later ones carry replace directives).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface GoTool {
  /** Executable name. */
  name: string;
  /** Env var that overrides the lookup with an explicit path. */
  envVar: string;
  /** go install target, pinned. */
  module: string;
}

export const TEMPORAL_CLI: GoTool = {
  name: 'temporal',
  envVar: 'TEMPORAL_CLI',
  module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
};

export const FAKE_GCS_SERVER: GoTool = {
  name: 'fake-gcs-server',
  envVar: 'FAKE_GCS_SERVER',
  module: 'github.com/fsouza/fake-gcs-server@v1.55.1',
};

/** Builds the Kubernetes overlays of infra/k8s (the manifests tests render and validate them). v5.7.1: later tags need Go ≥ 1.27. */
export const KUSTOMIZE: GoTool = {
  name: 'kustomize',
  envVar: 'KUSTOMIZE',
  module: 'sigs.k8s.io/kustomize/kustomize/v5@v5.7.1',
};

/** Machine-wide cache, so fresh clones on the same machine (CI) reuse one build. */
export function toolCacheDir(): string {
  return process.env.RECAPTION_TOOL_CACHE ?? path.join(os.homedir(), '.cache', 'recaption', 'bin');
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function goBinDir(): string | undefined {
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
    return gopath ? path.join(gopath, 'bin') : undefined;
  } catch {
    return undefined;
  }
}

/** The tool's path, looking at the env override, PATH, the project cache and GOPATH/bin; undefined if absent. */
export function findTool(tool: GoTool): string | undefined {
  const explicit = process.env[tool.envVar];
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  const candidates = [onPath(tool.name), path.join(toolCacheDir(), tool.name)];
  const gobin = goBinDir();
  if (gobin) candidates.push(path.join(gobin, tool.name));
  return candidates.find((p): p is string => !!p && existsSync(p));
}

export function installHint(tool: GoTool): string {
  return (
    `${tool.name} was not found (looked at $${tool.envVar}, PATH, ${toolCacheDir()} and $(go env GOPATH)/bin).\n` +
    `Install it with:  GOBIN=${toolCacheDir()} go install ${tool.module}\n` +
    `(if your Go is too old or too new to build it: GOTOOLCHAIN=go1.25.0 go install ...), or set ${tool.envVar}=/path/to/${tool.name}.`
  );
}

/**
 * Find the tool, else build the pinned version into the cache with `go install`, retrying once with a pinned
 * Go toolchain fetched through the module proxy. Throws with install instructions when both fail.
 */
export function ensureTool(tool: GoTool, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): string {
  const found = findTool(tool);
  if (found) return found;
  if (!onPath('go')) throw new Error(installHint(tool) + '\nGo is not installed, so it cannot be built here.');
  const gobin = toolCacheDir();
  mkdirSync(gobin, { recursive: true });
  for (const toolchain of [undefined, 'go1.25.0']) {
    log(`building ${tool.module} with go install${toolchain ? ` (GOTOOLCHAIN=${toolchain})` : ''} — once per machine, a few minutes...`);
    const env = { ...process.env, GOBIN: gobin, ...(toolchain ? { GOTOOLCHAIN: toolchain } : {}) };
    const r = spawnSync('go', ['install', tool.module], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const built = path.join(gobin, tool.name);
    if (r.status === 0 && existsSync(built)) return built;
  }
  throw new Error(`building ${tool.name} failed.\n` + installHint(tool));
}
