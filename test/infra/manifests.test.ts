/**
 * The fleet's manifests, validated offline (no Docker, no cluster): every Kubernetes manifest that kustomize
 * renders from infra/k8s (base and each overlay) against the Kubernetes and KEDA schemas, the compose file against
 * the Compose specification, the worker command lines in both parsed by the CLI's own option parser, and what
 * holds them together: KEDA reads the same task queue and cluster address as the worker it scales, GPU pods ask
 * for a GPU and outlive the worker's shutdown grace, the run config the GPU workers load is mounted and valid.
 * The last tests break a manifest on purpose to show each check can fail.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { msToNumber } from '@temporalio/common/lib/time';
import { parse, parseAllDocuments } from 'yaml';
import { parseLogFormat, parseQueues, type WorkerOptions } from '../../cli/commands/worker';
import { findTool, installHint, KUSTOMIZE } from '../../infra/tools';
import { parseConfig } from '../../lib/config/load';
import { REPO_ROOT } from '../helpers/paths';
import { composeValidator, KEDA, kubernetesValidator, parseWorkerCommand, type Manifest } from './validate';

const K8S = path.join(REPO_ROOT, 'infra', 'k8s');
const COMPOSE = path.join(REPO_ROOT, 'infra', 'compose.yaml');
const DOCKERFILE = path.join(REPO_ROOT, 'infra', 'docker', 'Dockerfile');
const TARGETS = ['base', ...readdirSync(path.join(K8S, 'overlays')).map((o) => `overlays/${o}`)];

interface Container {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  nodeSelector?: Record<string, string>;
  tolerations?: Array<{ key?: string }>;
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; configMap?: { name: string } }>;
}
type Deployment = Manifest & { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec } } };
type ConfigMap = Manifest & { data?: Record<string, string> };
type ScaledObject = Manifest & { spec: { scaleTargetRef: { name: string }; minReplicaCount?: number; triggers: Array<{ type: string; metadata: Record<string, string> }> } };

function kustomize(target: string): Manifest[] {
  const bin = findTool(KUSTOMIZE);
  if (!bin) throw new Error(installHint(KUSTOMIZE));
  const out = execFileSync(bin, ['build', path.join(K8S, target)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Manifest);
}

const rendered = new Map(TARGETS.map((t) => [t, kustomize(t)]));
const k8sErrors = kubernetesValidator();
const of = <T extends Manifest>(docs: Manifest[], kind: string) => docs.filter((d) => d.kind === kind) as T[];

/** The container's environment as the pod gets it: env values and envFrom ConfigMaps of the same render. */
function containerEnv(docs: Manifest[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = of<ConfigMap>(docs, 'ConfigMap').find((m) => m.metadata.name === from.configMapRef?.name);
    if (!cm) throw new Error(`envFrom names ConfigMap ${from.configMapRef?.name}, which the render lacks`);
    Object.assign(env, cm.data);
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

/** The worker container of a Deployment and its parsed command line. */
function worker(docs: Manifest[], d: Deployment): { container: Container; env: Record<string, string>; opts: WorkerOptions } {
  const container = d.spec.template.spec.containers.find((c) => c.args?.[0] === 'worker');
  if (!container) throw new Error(`${d.metadata.name}: no container runs \`recaption worker\``);
  const env = containerEnv(docs, container);
  return { container, env, opts: parseWorkerCommand(container.args!, env) };
}

describe.each(TARGETS)('infra/k8s/%s, rendered by kustomize', (target) => {
  const docs = rendered.get(target)!;

  it('renders the worker Deployments, their ScaledObjects and the run config', () => {
    expect(of(docs, 'Deployment').map((d) => d.metadata.name).sort()).toEqual(['recaption-worker-cpu', 'recaption-worker-gpu']);
    expect(of(docs, 'ScaledObject').map((d) => d.metadata.name).sort()).toEqual(['recaption-worker-cpu', 'recaption-worker-gpu']);
  });

  it(`every manifest is valid against the Kubernetes and KEDA schemas (strict)`, () => {
    expect(docs.map((d) => ({ doc: `${d.kind}/${d.metadata.name}`, errors: k8sErrors(d) }))).toEqual(docs.map((d) => ({ doc: `${d.kind}/${d.metadata.name}`, errors: [] })));
  });

  it("the worker command lines parse with the CLI's own parser, and the pods fit them", () => {
    for (const d of of<Deployment>(docs, 'Deployment')) {
      const { container, opts } = worker(docs, d);
      const pod = d.spec.template.spec;
      const queues = parseQueues(opts.queues);
      parseLogFormat(opts.logFormat);
      // Kubernetes must not kill the worker before it has given running activities their grace.
      expect({ name: d.metadata.name, grace: (pod.terminationGracePeriodSeconds ?? 30) * 1000 > msToNumber(opts.shutdownGrace as never) }).toEqual({ name: d.metadata.name, grace: true });
      // Metrics: the port the worker serves is the one the pod exposes and Prometheus is told to scrape.
      expect(opts.metricsPort).toBeDefined();
      expect(container.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(opts.metricsPort);
      expect(d.spec.template.metadata.annotations?.['prometheus.io/port']).toBe(String(opts.metricsPort));
      // A run config the worker loads at start is mounted, from a ConfigMap of this render, and is a valid config.
      for (const file of opts.config) {
        const mount = container.volumeMounts?.find((m) => file.startsWith(m.mountPath + '/'));
        const volume = pod.volumes?.find((v) => v.name === mount?.name);
        const cm = of<ConfigMap>(docs, 'ConfigMap').find((m) => m.metadata.name === volume?.configMap?.name);
        const text = cm?.data?.[path.relative(mount!.mountPath, file)];
        expect({ file, mounted: text !== undefined }).toEqual({ file, mounted: true });
        expect(() => parseConfig(parse(text!), `${target} ${file}`)).not.toThrow();
      }
      if (queues.includes('gpu') && opts.device?.startsWith('cuda:')) {
        expect(container.resources?.requests?.['nvidia.com/gpu']).toBe('1');
        expect(container.resources?.limits?.['nvidia.com/gpu']).toBe('1');
        expect(Object.keys(pod.nodeSelector ?? {}).length).toBeGreaterThan(0);
        expect(pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu')).toBe(true);
      }
    }
  });

  it("each ScaledObject reads the backlog of the queue its workers poll, on the cluster they use, with KEDA's temporal scaler", () => {
    const allowed = new Set([...KEDA.temporalScaler.triggerMetadata, ...KEDA.temporalScaler.fromEnv.map((n) => `${n}FromEnv`)]);
    for (const so of of<ScaledObject>(docs, 'ScaledObject')) {
      const d = of<Deployment>(docs, 'Deployment').find((x) => x.metadata.name === so.spec.scaleTargetRef.name);
      expect({ so: so.metadata.name, target: d?.metadata.name }).toEqual({ so: so.metadata.name, target: so.spec.scaleTargetRef.name });
      const { env, opts } = worker(docs, d!);
      const queues = parseQueues(opts.queues);
      expect(queues).toHaveLength(1); // one queue per Deployment, so one backlog decides its size
      const polled = queues[0] === 'gpu' ? opts.gpuQueue : opts.cpuQueue;
      expect(so.spec.triggers).toHaveLength(1);
      const { type, metadata } = so.spec.triggers[0]!;
      expect(type).toBe('temporal');
      expect(Object.keys(metadata).filter((k) => !allowed.has(k))).toEqual([]);
      // KEDA resolves *FromEnv from the scale target's container environment.
      const value = (name: string) => metadata[name] ?? env[metadata[`${name}FromEnv`] ?? ''];
      expect(value('taskQueue')).toBe(polled);
      expect(value('endpoint')).toBe(env.TEMPORAL_ADDRESS);
      expect(value('namespace') ?? 'default').toBe(env.TEMPORAL_NAMESPACE ?? 'default');
      expect(metadata.activationTargetQueueSize).toBe('0');
      if (queues[0] === 'gpu') {
        expect(so.spec.minReplicaCount).toBe(0); // idle GPU nodes scale away
        expect(metadata.queueTypes).toBe('activity'); // GPU workers run no workflows
      }
    }
  });
});

describe('infra/compose.yaml', () => {
  const compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as { services: Record<string, Record<string, unknown>> };
  const services = compose.services;
  const workers = Object.entries(services).filter(([, s]) => (s.command as string[] | undefined)?.[0] === 'worker');

  it('is valid against the Compose specification', () => {
    expect(composeValidator()(compose)).toEqual([]);
  });

  it('runs Temporal on PostgreSQL with its UI, fake-gcs-server, the search-attribute registration and a CPU and a GPU worker', () => {
    expect(services.temporal?.image).toMatch(/^temporalio\/auto-setup:/);
    expect((services.temporal?.environment as Record<string, string>).DB).toBe('postgres12');
    expect(services['temporal-ui']?.image).toMatch(/^temporalio\/ui:/);
    expect(services['fake-gcs']?.image).toMatch(/^fsouza\/fake-gcs-server:/);
    const register = services['search-attributes']!.entrypoint as string[];
    expect(existsSync(path.join(REPO_ROOT, register[register.length - 1]!))).toBe(true);
    expect(workers.map(([name]) => name).sort()).toEqual(['worker-cpu', 'worker-gpu']);
  });

  it("its worker command lines parse with the CLI's own parser; the GPU one reserves an NVIDIA GPU behind a profile", () => {
    const dockerTargets = [...readFileSync(DOCKERFILE, 'utf8').matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);
    for (const [name, s] of workers) {
      const opts = parseWorkerCommand(s.command as string[]);
      const queues = parseQueues(opts.queues);
      expect({ name, target: dockerTargets.includes((s.build as { target: string }).target) }).toEqual({ name, target: true });
      expect((s.ports as string[]).some((p) => p.endsWith(`:${opts.metricsPort}`))).toBe(true);
      if (queues.includes('gpu')) {
        expect(s.profiles).toEqual(['gpu']);
        expect(opts.device).toMatch(/^cuda:\d+$/);
        const devices = (s.deploy as { resources: { reservations: { devices: Array<{ driver: string; capabilities: string[] }> } } }).resources.reservations.devices;
        expect(devices).toEqual([expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'] })]);
        expect(msToNumber(String(s.stop_grace_period) as never)).toBeGreaterThan(msToNumber(opts.shutdownGrace as never));
      }
    }
  });

  it("the Dockerfile copies only what exists, and its targets are the compose file's", () => {
    const copied = [...readFileSync(DOCKERFILE, 'utf8').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    for (const src of copied) expect({ src, exists: existsSync(path.join(REPO_ROOT, src)) }).toEqual({ src, exists: true });
  });
});

describe('the checks fail on a broken manifest', () => {
  const gpu = () => structuredClone(of<Deployment>(rendered.get('overlays/gpu')!, 'Deployment').find((d) => d.metadata.name === 'recaption-worker-gpu')!);

  it('a misspelt field of a Deployment', () => {
    const d = gpu() as Deployment & { spec: { template: { spec: PodSpec & { nodeSelectr?: unknown } } } };
    d.spec.template.spec.nodeSelectr = d.spec.template.spec.nodeSelector;
    expect(k8sErrors(d)).toEqual([expect.stringContaining('nodeSelectr')]);
  });

  it('a misspelt field of a ScaledObject, and a kind without a schema', () => {
    const so = structuredClone(of<ScaledObject>(rendered.get('base')!, 'ScaledObject')[0]!) as ScaledObject & { spec: { minReplicas?: number } };
    so.spec.minReplicas = 0;
    expect(k8sErrors(so)).toEqual([expect.stringContaining('minReplicas')]);
    expect(k8sErrors({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })[0]).toMatch(/no schema for v1 Pod/);
  });

  it('a renamed or unknown worker flag, and a bad log format', () => {
    const args = worker(rendered.get('base')!, gpu()).container.args!;
    expect(() => parseWorkerCommand(args.map((a) => a.replace('--metrics-port', '--metrics')))).toThrow(/unknown option '--metrics=9464'|unknown option/);
    expect(() => parseLogFormat(parseWorkerCommand(['worker', '--log-format', 'xml']).logFormat)).toThrow(/--log-format/);
  });

  it('a compose service with a key the specification does not have', () => {
    const compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as { services: Record<string, Record<string, unknown>> };
    compose.services['worker-cpu']!.comand = ['worker'];
    expect(composeValidator()(compose).join('\n')).toMatch(/comand/);
  });
});
