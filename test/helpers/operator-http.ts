/**
 * [P-90] The operator port from a test: one HTTP request on a connection of its own (no keep-alive pool left between
 * tests), the samples of a Prometheus text, and a wait for /health to say what a test expects.
 */
import http from 'node:http';
import { within } from './within.ts';

export interface OperatorAnswer {
  status: number;
  contentType: string;
  body: string;
}

export function operatorRequest(
  operator: { host: string; port: number },
  path: string,
  method = 'GET',
): Promise<OperatorAnswer> {
  return within(
    new Promise<OperatorAnswer>((resolve, reject) => {
      const options = { host: operator.host, port: operator.port, path, method, agent: false };
      const outgoing = http.request(options, (response) => {
        const pieces: Buffer[] = [];
        response.on('data', (piece: Buffer) => pieces.push(piece));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            contentType: String(response.headers['content-type']),
            body: Buffer.concat(pieces).toString('utf8'),
          }),
        );
      });
      outgoing.on('error', reject);
      outgoing.end();
    }),
    `${method} ${path}`,
  );
}

/** The samples of a Prometheus text exposition: `name{labels}` (as written) to value. */
export function metricSamples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/**
 * Asks /health until it answers `status` (nothing announces a change of health), every 50 ms up to `deadlineMs`;
 * resolves with the body of the answer.
 */
export async function healthBecomes(
  operator: { host: string; port: number },
  status: number,
  deadlineMs = 10_000,
): Promise<Record<string, unknown>> {
  const start = Date.now();
  for (;;) {
    const answer = await operatorRequest(operator, '/health');
    if (answer.status === status) return JSON.parse(answer.body) as Record<string, unknown>;
    if (Date.now() - start > deadlineMs) {
      throw new Error(`/health still ${answer.status} ${answer.body.trim()} after ${deadlineMs} ms, not ${status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
