/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and ranks functions by self time, each with its most frequent caller
 * (a native function such as SQLite's `run` says little without it), and sums self time by area of the code.
 * Pure: takes the parsed JSON. V8 samples the main thread on wall time: a thread preempted inside a system call
 * is charged to that call; bench/perf-profile.ts samples CPU time, and the bench prefers it when perf works.
 */
import type { PerfProfileSummary } from './perf-profile.ts';

export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  startTime: number;
  endTime: number;
  samples: number[];
  /** microseconds since the previous sample */
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  /** self time, milliseconds */
  selfMs: number;
  /** share of the sampled time that was not idle */
  share: number;
  /** the caller that accounts for most of this function's self time */
  caller: string;
}

export interface V8ProfileSummary {
  /** absent in results written before perf profiles existed */
  profiler?: 'v8';
  /** why perf did not make the profile (not installed, refused, failed), when the bench tried it */
  perfUnavailable?: string;
  /** milliseconds sampled */
  totalMs: number;
  idleMs: number;
  top: ProfileEntry[];
  areas: Array<{ area: string; selfMs: number; share: number }>;
}

/** Made by V8's sampler (`node --cpu-prof`) or by perf (bench/perf-profile.ts). */
export type ProfileSummary = V8ProfileSummary | PerfProfileSummary;

const IDLE = new Set(['(idle)']);

/**
 * `window`: only the samples taken between these two times (microseconds on the profile's clock, the machine's
 * monotonic clock), e.g. a measured window without the process's start-up.
 */
export function summarizeProfile(profile: CpuProfile, topCount = 20, window?: [number, number]): V8ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfByNode = new Map<number, number>();
  let totalMicros = 0;
  // timeDeltas[i] leads from sample i - 1 to sample i; timeDeltas[i + 1], the time until the next sample, is the time
  // spent where sample i was taken.
  let takenAt = profile.startTime;
  for (let index = 0; index < profile.samples.length; index++) {
    takenAt += profile.timeDeltas[index] ?? 0;
    if (window && (takenAt < window[0] || takenAt > window[1])) continue;
    const micros = profile.timeDeltas[index + 1] ?? 0;
    const id = profile.samples[index] as number;
    selfByNode.set(id, (selfByNode.get(id) ?? 0) + micros);
    totalMicros += micros;
  }

  const functions = new Map<string, { micros: number; callers: Map<string, number> }>();
  const areas = new Map<string, number>();
  let idleMicros = 0;
  for (const [id, micros] of selfByNode) {
    const node = byId.get(id);
    if (!node) continue;
    if (IDLE.has(node.callFrame.functionName)) {
      idleMicros += micros;
      continue;
    }
    const name = describeFrame(node.callFrame);
    const parent = byId.get(parentOf.get(id) ?? -1);
    const caller = parent ? describeFrame(parent.callFrame) : '';
    const entry = functions.get(name) ?? { micros: 0, callers: new Map<string, number>() };
    entry.micros += micros;
    entry.callers.set(caller, (entry.callers.get(caller) ?? 0) + micros);
    functions.set(name, entry);
    const area = areaOf(node.callFrame, parent?.callFrame);
    areas.set(area, (areas.get(area) ?? 0) + micros);
  }
  const busyMicros = Math.max(1, totalMicros - idleMicros);
  const top = [...functions.entries()]
    .sort((a, b) => b[1].micros - a[1].micros)
    .slice(0, topCount)
    .map(([name, entry]) => ({
      name,
      selfMs: entry.micros / 1000,
      share: entry.micros / busyMicros,
      caller: [...entry.callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
    }));
  return {
    profiler: 'v8',
    totalMs: totalMicros / 1000,
    idleMs: idleMicros / 1000,
    top,
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, micros]) => ({ area, selfMs: micros / 1000, share: micros / busyMicros })),
  };
}

function describeFrame(frame: { functionName: string; url: string; lineNumber: number }): string {
  const name = frame.functionName || '(anonymous)';
  if (frame.url === '') return name;
  // Code compiled on the fly (tsx) reports line 0 for everything: the file is all that can be said.
  return frame.lineNumber > 0
    ? `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
    : `${name} ${shortUrl(frame.url)}`;
}

/** The part of a script URL that says where it is: from node_modules/, or from the package's own folders. */
function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) return url.slice(modules + 'node_modules/'.length);
  const own = /\/((?:src|machines|db|client|bench)\/.*)$/.exec(url);
  if (own) return own[1] as string;
  return url.replace(/^file:\/\//, '');
}

/** A native frame (no URL: V8 builtins, C++ bindings, SQLite) counts in the area of the JavaScript that called it. */
function areaOf(
  frame: { functionName: string; url: string },
  parent: { functionName: string; url: string } | undefined,
): string {
  if (frame.functionName === '(garbage collector)') return 'garbage collection';
  if (frame.functionName === '(program)') return 'V8/libuv outside JavaScript (program)';
  if (frame.url === '') return parent && parent.url !== '' ? `${areaOfUrl(parent.url)} (native callee)` : 'native';
  return areaOfUrl(frame.url);
}

function areaOfUrl(url: string): string {
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1] as string;
  if (url.startsWith('node:')) return 'node core';
  const own = /\/(src\/[^/]+|machines|db|client)\//.exec(url);
  if (own) return own[1] as string;
  return 'other';
}
