/**
 * One thread of a threaded load run (bench/threaded-load.ts): loads the generator, says it is ready, runs its share
 * of the connections when told to go, and posts its result back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type LoadOptions, runLoad } from './load-generator.ts';

const port = parentPort;
if (port === null) throw new Error('load-worker.ts runs as a worker thread');
port.once('message', async () => {
  const result = await runLoad(workerData as LoadOptions);
  const samples = result.samples.slice();
  port.postMessage({ ...result, samples }, [samples.buffer]);
});
port.postMessage('ready');
