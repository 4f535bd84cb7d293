/**
 * How long this thread has had an ONNX Runtime run in flight. onnxruntime-node's session.run blocks the calling
 * thread for the whole inference (its binding is synchronous; the JS wrapper only defers it to setImmediate), so the
 * event loop counts that time as busy; the annotate stage subtracts it to report the thread's own JS work. Runs in
 * flight together (the CLIP scorer starts three at once) count once, from the first start to the last end; JS that
 * runs in between, before ORT's deferred call, counts as ORT: a small overestimate of the inference time.
 *
 * Wall time inflates when the machine is oversubscribed; so, on Linux, the thread's CPU time is kept too
 * (/proc/thread-self/stat, clock ticks of 10 ms, sampled by the kernel without bias): CPU time outside the runs is
 * this thread's own work whatever else the machine does.
 */
import { openSync, readSync } from 'node:fs';

let inFlight = 0;
let since = 0;
let total = 0;
let cpuSince = 0;
let cpuTotal = 0;

let statFd: number | null | undefined;
const statBuf = Buffer.alloc(1024);

/** This thread's CPU milliseconds (user + system), or null where /proc/thread-self is not there. */
export function threadCpuMs(): number | null {
  try {
    // Opened once per thread (module state is per thread), then one pread per call.
    if (statFd === undefined) statFd = openSync('/proc/thread-self/stat', 'r');
    if (statFd === null) return null;
    const stat = statBuf.toString('latin1', 0, readSync(statFd, statBuf, 0, statBuf.length, 0));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd (state) on
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in USER_HZ (100) ticks
  } catch {
    statFd = null;
    return null;
  }
}

const hasCpu = threadCpuMs() !== null;

/** Milliseconds with at least one run in flight on this thread, since the thread started. */
export function onnxRunMs(): number {
  return total + (inFlight > 0 ? performance.now() - since : 0);
}

/** This thread's CPU milliseconds while runs were in flight (null without /proc). */
export function onnxRunCpuMs(): number | null {
  return hasCpu ? cpuTotal + (inFlight > 0 ? threadCpuMs()! - cpuSince : 0) : null;
}

/** Times `run` as ONNX Runtime time (see the header). */
export async function timedRun<T>(run: () => Promise<T>): Promise<T> {
  if (inFlight++ === 0) {
    since = performance.now();
    if (hasCpu) cpuSince = threadCpuMs()!;
  }
  try {
    return await run();
  } finally {
    if (--inFlight === 0) {
      total += performance.now() - since;
      if (hasCpu) cpuTotal += threadCpuMs()! - cpuSince;
    }
  }
}
