/**
 * The usage reader of bench/usage-latency.ts, as a process of its own (so that its work on the document does not count
 * in the other client's latency): reads the whole usage document again and again from the server on port argv[2],
 * says `reading` on stdout when the first one starts, and when its stdin ends finishes the usage in flight and prints
 * a JSON summary (usages read, seconds each, bytes of the document).
 */
import { performance } from 'node:perf_hooks';
import { ImgcacheClient } from '../client/imgcache-client.ts';

const port = Number(process.argv[2]);
const client = await ImgcacheClient.connect({ port });
let going = true;
process.stdin.on('end', () => {
  going = false;
});
process.stdin.resume();
const seconds: number[] = [];
let documentBytes = 0;
process.stdout.write('reading\n');
while (going) {
  const startedAt = performance.now();
  const text = await client.usageText();
  seconds.push((performance.now() - startedAt) / 1000);
  documentBytes = Buffer.byteLength(text);
}
client.close();
process.stdout.write(`${JSON.stringify({ seconds, documentBytes })}\n`);
