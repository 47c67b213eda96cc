/**
 * nginx serving the bench images on 127.0.0.1, from a configuration and prefix of its own in a temporary folder,
 * as a foreground process (`daemon off`) that the bench stops. Access log off, keep-alive without a request limit.
 * The two configurations that were fastest on the reference machine:
 * - `1 worker, sendfile off`
 * - `2 workers, sendfile on, tcp_nopush off`
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuTimeMs, peakRssBytes, processFamily, sumOver } from './proc-stats.ts';
import { freePort, isListening, stopProcess, waitUntil } from './server-processes.ts';

export interface NginxSetup {
  /** e.g. "1 worker, sendfile off" */
  name: string;
  workers: number;
  sendfile: boolean;
}

export const NGINX_SETUPS: readonly NginxSetup[] = [
  { name: '1 worker, sendfile off', workers: 1, sendfile: false },
  { name: '2 workers, sendfile on, tcp_nopush off', workers: 2, sendfile: true },
];

export interface NginxProcess {
  readonly setup: NginxSetup;
  readonly port: number;
  readonly pid: number;
  /** CPU time of the master and its workers, ms */
  cpuTimeMs(): number;
  /** the sum of the master's and workers' peak resident memory, bytes */
  peakRssBytes(): number;
  stop(): Promise<void>;
}

const START_DEADLINE_MS = 15_000;

export function nginxConfig(setup: NginxSetup, prefix: string, root: string, port: number): string {
  const temp = (name: string) => path.join(prefix, name);
  return `daemon off;
master_process on;
worker_processes ${setup.workers};
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} notice;

events {
  worker_connections 4096;
}

http {
  access_log off;
  sendfile ${setup.sendfile ? 'on' : 'off'};
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  client_body_temp_path ${temp('client_body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};

  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
    }
  }
}
`;
}

/** Starts nginx with `setup`, serving the files of `root`; resolves once it listens. */
export async function startNginx(setup: NginxSetup, prefix: string, root: string): Promise<NginxProcess> {
  mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  const configFile = path.join(prefix, 'nginx.conf');
  writeFileSync(configFile, nginxConfig(setup, prefix, root, port));
  const child = spawn('nginx', ['-p', prefix, '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit');
  const pid = child.pid ?? -1;
  // The master opens the listening socket before it starts its workers: wait for the socket and the workers.
  await waitUntil(
    () => isListening(port) && processFamily(pid).length > setup.workers,
    child,
    () => stderr,
    START_DEADLINE_MS,
  );
  return {
    setup,
    port,
    pid,
    cpuTimeMs: () => sumOver(processFamily(pid), cpuTimeMs),
    peakRssBytes: () => sumOver(processFamily(pid), peakRssBytes),
    stop: () => stopProcess(child, exited),
  };
}
