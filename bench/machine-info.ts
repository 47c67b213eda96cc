/**
 * Where the figures were measured: the machine, the software and the code (the commit, and the files that differ
 * from it, since several people change the working tree).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { PACKAGE_ROOT } from '../src/config.ts';
import { commandVersion } from './system-packages.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
  nginx: string | null;
  wrk: string | null;
  /** 1, 5 and 15 minute load averages when the bench started */
  loadAverage: number[];
}

export interface CodeVersion {
  commit: string;
  /** files that differ from the commit (git status), outside bench/ */
  uncommitted: string[];
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const memory = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return {
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryBytes: memory ? Number(memory[1]) * 1024 : os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: commandVersion('nginx', ['-v']),
    wrk: commandVersion('wrk', ['-v'])?.replace(/\s*Copyright.*$/, '') ?? null,
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/** `exportedFrom`: the commit a folder exported with `git archive` holds (it has no git metadata). */
export function codeVersion(exportedFrom: string | null = null): CodeVersion {
  if (exportedFrom !== null) return { commit: exportedFrom.slice(0, 12), uncommitted: [] };
  const git = (...args: string[]) => execFileSync('git', args, { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  try {
    const uncommitted = git('status', '--porcelain')
      .split('\n')
      .map((line) => line.slice(3).trim())
      .filter((file) => file !== '' && !file.startsWith('bench/'));
    return { commit: git('rev-parse', '--short=12', 'HEAD').trim(), uncommitted };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}
