/**
 * The client's pipelined sessions [P-16] [P-75] and its downloads [P-24], against a real server on 127.0.0.1 (a
 * proxy in between reads the frames to count the requests in flight, or cuts a transfer midway): refresh and get
 * pipelined give what one at a time gives, quota exhausted mid-pipeline, a large image hashed and renamed, a
 * transfer cut short leaving no file, a fatal ERROR that answers no request reported in the server's words, a
 * non-fatal one with id null taken for the answer to the oldest request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../client/cli.ts';
import { receiveImage } from '../client/download.ts';
import { ImgcacheClient } from '../client/imgcache-client.ts';
import { MAX_IN_FLIGHT } from '../client/pipeline.ts';
import type { TierRange } from '../machines/tiers.ts';
import type { ServerConfig } from '../src/config.ts';
import type { ServerError } from '../src/errors.ts';
import { type FrameProxy, type FrameProxyOptions, startFrameProxy } from './helpers/frame-proxy.ts';
import { holdWriteLock } from './helpers/sqlite-conditions.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';
import { within } from './helpers/within.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const IMAGES = 40;
const names = Array.from({ length: IMAGES }, (_, index) => `image-${String(index).padStart(2, '0')}.png`);
const LARGE = 'large.png';
/** several DATA frames of the default 1 MiB, and a last one cut short */
const LARGE_BYTES = 5 * 1024 * 1024 + 12_345;
const TIERS: TierRange[] = [
  { from: 100, to: 199, tier: 'bronze', quota: 3, canReadUsage: false },
  { from: 200, to: 999, tier: 'roomy', quota: 1000, canReadUsage: false },
];

interface Setup {
  folder: string;
  images: string;
  server: TestServer;
  proxy: FrameProxy;
}

interface SetupOptions {
  /** session codes, handed out in turn */
  codes: number[];
  proxy?: FrameProxyOptions;
  server?: Partial<Omit<ServerConfig, 'codes'>>;
}

/**
 * A test's handler that runs `run` against a server over IMAGES small images and one large one, with a
 * frame-reading proxy in front of it, and always stops both and removes the folder.
 */
function withServer(options: SetupOptions, run: (setup: Setup) => Promise<void>): () => Promise<void> {
  return async () => {
    const folder = makeTemporaryFolder('imgcache-pipeline-');
    const images = path.join(folder, 'images');
    mkdirSync(images);
    for (const name of names) writeFileSync(path.join(images, name), randomBytes(3000));
    writeFileSync(path.join(images, LARGE), randomBytes(LARGE_BYTES));
    const server = await startTestServer({
      folder,
      cacheDir: images,
      codes: options.codes,
      tiers: TIERS,
      ...options.server,
    });
    const proxy = await startFrameProxy(server.port, options.proxy);
    try {
      await run({ folder, images, server, proxy });
    } finally {
      await proxy.close();
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  };
}

/** Runs the CLI against the proxy; returns its exit status, stdout and stderr. */
async function cli(setup: Setup, cacheDir: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(
    [...args, '--port', String(setup.proxy.port), '--cache-dir', cacheDir],
    (line) => out.push(line),
    (line) => err.push(line),
  );
  return { status, out: out.join('\n'), err: err.join('\n') };
}

function json(run: { out: string }) {
  return JSON.parse(run.out) as { images: Array<Record<string, unknown>>; quota: Record<string, unknown> };
}

/** The files of a cache folder: names, without the manifest; temporary files would show as dot files. */
function filesIn(folder: string): string[] {
  return readdirSync(folder)
    .filter((name) => name !== '.imgcache-manifest.json')
    .sort();
}

test(
  '[P-16] [P-75] get of many images keeps several requests in flight, at most 16; one at a time gives the same',
  withServer({ codes: [500, 500] }, async (setup) => {
    const pipelined = await cli(setup, path.join(setup.folder, 'a'), 'get', ...names, '--json');
    assert.is(pipelined.status, 0, pipelined.err);
    const inFlight = setup.proxy.maxUnanswered();
    assert.ok(inFlight > 1 && inFlight <= MAX_IN_FLIGHT, `${inFlight} requests in flight`);

    const single = await cli(setup, path.join(setup.folder, 'b'), 'get', ...names, '--json', '--max-in-flight', '1');
    assert.is(single.status, 0, single.err);
    const withoutPath = (run: { out: string }) => json(run).images.map(({ path: _path, ...item }) => item);
    assert.equal(withoutPath(pipelined), withoutPath(single));
    for (const name of names) {
      const served = readFileSync(path.join(setup.images, name));
      assert.ok(readFileSync(path.join(setup.folder, 'a', name)).equals(served), name);
    }
  }),
);

test(
  '[P-75] refresh pipelined gives the same items as one at a time: not modified, changed, gone',
  withServer({ codes: [500, 500, 500, 500] }, async (setup) => {
    const folders = ['pipelined', 'single'].map((name) => path.join(setup.folder, name));
    for (const folder of folders) {
      assert.is((await cli(setup, folder, 'get', ...names)).status, 0);
      // Changed here (so revalidated with another hash: the server sends the image again) and one unknown there.
      for (const name of names.slice(0, 3)) writeFileSync(path.join(folder, name), 'edited by hand');
      writeFileSync(path.join(folder, 'gone.png'), 'not on the server');
    }
    const [pipelined, single] = [
      await cli(setup, folders[0] as string, 'refresh', '--json'),
      await cli(setup, folders[1] as string, 'refresh', '--json', '--max-in-flight', '1'),
    ];
    assert.is(pipelined.status, 0, pipelined.err);
    assert.is(single.status, 0, single.err);
    assert.equal(json(pipelined).images, json(single).images);
    const statuses = json(pipelined).images.map((item) => item.status);
    assert.is(statuses.filter((status) => status === 'downloaded').length, 3);
    assert.is(statuses.filter((status) => status === 'not-modified').length, IMAGES - 3);
    assert.is(statuses.filter((status) => status === 'gone').length, 1);
    assert.ok(setup.proxy.maxUnanswered() > 1, 'the refresh was pipelined');
  }),
);

test(
  '[P-48] [P-75] a pipelined refresh past the budget of free requests is paced: every image revalidated, none refused',
  // A small burst: the requests sent before the first refusal are refused too, and retried in turn. Refilled at 50 a
  // second, the 36 past the burst need 0.7 s of budget: a loaded machine answering slower than one per 5 ms (once
  // the refill) still refuses some.
  withServer({ codes: [500, 500], server: { freeRequestBurst: 4, freeRequestsPerSecond: 50 } }, async (setup) => {
    const folder = path.join(setup.folder, 'paced');
    assert.is((await cli(setup, folder, 'get', ...names)).status, 0);
    const run = await cli(setup, folder, 'refresh', '--json');
    assert.is(run.status, 0, run.err);
    const images = json(run).images;
    assert.equal(
      images.map((item) => item.status),
      names.map(() => 'not-modified'),
      JSON.stringify(images.filter((item) => item.status !== 'not-modified')),
    );
    const refused = setup.proxy.errorCodes().filter((code) => code === 'rate-limited');
    assert.ok(refused.length > 1, 'the budget was spent: requests were refused and asked again');
  }),
);

test(
  '[P-21] [P-55] [P-75] quota exhausted mid-pipeline: the refusal, then the rest not fetched; what arrived whole is kept',
  withServer({ codes: [108] }, async (setup) => {
    const folder = path.join(setup.folder, 'bronze');
    const wanted = ['missing.png', ...names.slice(0, 6)];
    const run = await cli(setup, folder, 'get', ...wanted, '--json');
    assert.is(run.status, 4, 'the status of the first failure: refused');
    assert.ok(setup.proxy.maxUnanswered() > 1, 'the gets were pipelined');
    const items = json(run).images;
    assert.equal(
      items.map((item) => [item.name, item.status]),
      [
        ['missing.png', 'failed'],
        [names[0], 'downloaded'],
        [names[1], 'downloaded'],
        [names[2], 'downloaded'],
        [names[3], 'failed'],
        [names[4], 'skipped'],
        [names[5], 'skipped'],
      ],
    );
    const codeOf = (index: number) => (items[index]?.error as { code?: string } | undefined)?.code;
    assert.equal([codeOf(0), codeOf(4)], ['image-not-found', 'quota-exhausted']);
    assert.equal(filesIn(folder), names.slice(0, 3), 'the three images whole, and no temporary file');
    const manifest = JSON.parse(readFileSync(path.join(folder, '.imgcache-manifest.json'), 'utf8'));
    assert.equal(
      manifest.images.map((image: { name: string }) => image.name),
      names.slice(0, 3),
    );

    const text = await cli(setup, path.join(setup.folder, 'again'), 'get', ...names.slice(0, 5));
    assert.match(text.err, /refused: .*\[quota-exhausted\]/);
    assert.match(text.err, new RegExp(`not fetched \\(the session ended\\): ${names[4]}$`, 'm'));
  }),
);

test(
  '[P-24] a large image is hashed as it arrives and renamed into place whole',
  withServer({ codes: [500] }, async (setup) => {
    const folder = path.join(setup.folder, 'large');
    const run = await cli(setup, folder, 'get', LARGE, '--json');
    assert.is(run.status, 0, run.err);
    const served = readFileSync(path.join(setup.images, LARGE));
    const [item] = json(run).images;
    assert.equal([item?.status, item?.bytes, item?.sha256], ['downloaded', LARGE_BYTES, sha(served)]);
    assert.ok(readFileSync(path.join(folder, LARGE)).equals(served));
    assert.equal(filesIn(folder), [LARGE]);
  }),
);

test(
  '[P-56] [P-55] a transfer cut midway leaves no file, and the images after it are not fetched',
  // Cut inside the large image, the second of three: the first is saved, the large one not, the third not tried.
  withServer({ codes: [500], proxy: { cutAfterServerBytes: 2 * 1024 * 1024 } }, async (setup) => {
    const folder = path.join(setup.folder, 'cut');
    const run = await cli(setup, folder, 'get', names[0] as string, LARGE, names[1] as string, '--json');
    assert.is(run.status, 5, 'the connection was lost');
    assert.equal(
      json(run).images.map((item) => [item.name, item.status]),
      [
        [names[0], 'downloaded'],
        [LARGE, 'failed'],
        [names[1], 'skipped'],
      ],
    );
    assert.equal(filesIn(folder), [names[0]], 'no partial or temporary file of the large image');
  }),
);

test(
  'a file that cannot be written fails its image, and the session goes on to the next answer',
  withServer({ codes: [500] }, async (setup) => {
    const client = await ImgcacheClient.connect({ port: setup.proxy.port });
    try {
      const nowhere = path.join(setup.folder, 'no-such-folder');
      const failed = await receiveImage(client, LARGE, nowhere).then(
        () => null,
        (error: NodeJS.ErrnoException) => error.code,
      );
      assert.is(failed, 'ENOENT');
      const folder = path.join(setup.folder, 'next');
      mkdirSync(folder);
      const next = await within(receiveImage(client, names[0] as string, folder), 'the get after the failed file');
      assert.is(next.status, 'downloaded');
    } finally {
      client.close();
    }
  }),
);

test(
  '[P-3] [P-26] a non-fatal ERROR with id null answers the oldest request: it fails, and the answers after it go to their own requests',
  withServer(
    {
      codes: [500],
      // The second get reaches the server without its id: the server answers it with bad-request, id null, and
      // the session goes on.
      proxy: {
        rewriteRequest: (request, index) =>
          index === 1 ? { command: request.command, image: request.image } : request,
      },
    },
    async (setup) => {
      const client = await ImgcacheClient.connect({ port: setup.proxy.port });
      try {
        const folder = path.join(setup.folder, 'pipelined');
        mkdirSync(folder);
        const wanted = names.slice(0, 3) as string[];
        const outcomes = await within(
          Promise.allSettled(wanted.map((name) => receiveImage(client, name, folder))),
          'the three pipelined gets answered',
        );
        assert.equal(
          outcomes.map((outcome) => outcome.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        const refusal = (outcomes[1] as PromiseRejectedResult).reason as ServerError;
        assert.equal([refusal.code, refusal.requestId, refusal.fatal], ['bad-request', null, false]);
        assert.equal(
          setup.proxy.errors().map((error) => [error.code, error.id]),
          [['bad-request', null]],
        );
        assert.equal(filesIn(folder), [wanted[0], wanted[2]]);
        for (const name of [wanted[0], wanted[2]] as string[]) {
          assert.ok(
            readFileSync(path.join(folder, name)).equals(readFileSync(path.join(setup.images, name))),
            `${name} holds its own bytes`,
          );
        }
        const after = await within(receiveImage(client, names[3] as string, folder), 'a get after the refusal');
        assert.is(after.status, 'downloaded', 'the connection is still open');
      } finally {
        client.close();
      }
    },
  ),
);

/** The proxy holds each connection's requests until the test calls `openRequests` (the last connection's). */
let openRequests: () => void = () => {};
const holdRequests = () =>
  new Promise<void>((resolve) => {
    openRequests = resolve;
  });

test(
  "[P-26] [P-55] a fatal ERROR that answers no request (history-unavailable): the server's code and words on the first image unanswered, the rest not fetched",
  withServer({ codes: [500, 500], proxy: { holdRequests } }, async (setup) => {
    const wanted = names.slice(0, 3);
    // The session is admitted (on record), then another process takes the history's write lock, and only then do
    // the pipelined gets reach the server: the first cannot be recorded, so it is not served, and the server answers
    // with the fatal ERROR history-unavailable, id null, and closes.
    const getWhileLocked = async (folder: string, ...flags: string[]) => {
      const running = cli(setup, folder, 'get', ...wanted, ...flags);
      const { session } = await within(
        setup.server.waitForNextEvent((event) => event.type === 'session-admitted'),
        'the admission on record',
      );
      const lock = await holdWriteLock(setup.server.database);
      try {
        openRequests();
        return await within(running, 'the get refused', 15_000);
      } finally {
        await lock.release();
        // The history is back once the session's close, held meanwhile, is on record: the next session is admitted.
        const closed = setup.server.waitForEvent(
          (event) => event.type === 'session-closed' && event.session === session,
        );
        await within(closed, 'the close on record once the lock is gone', 15_000);
      }
    };

    const run = await getWhileLocked(path.join(setup.folder, 'json'), '--json');
    const refusal = setup.proxy.errors().at(-1) as Record<string, unknown>;
    assert.equal([refusal.code, refusal.id, refusal.fatal], ['history-unavailable', null, true]);
    assert.is(run.status, 4, `refused, not unreachable: ${run.err}`);
    const items = json(run).images;
    assert.equal(
      items.map((item) => [item.name, item.status]),
      [
        [wanted[0], 'failed'],
        [wanted[1], 'skipped'],
        [wanted[2], 'skipped'],
      ],
    );
    assert.equal(items[0]?.error, { code: 'history-unavailable', message: refusal.message });

    const text = await getWhileLocked(path.join(setup.folder, 'text'));
    assert.is(text.status, 4);
    const said = `imgcache: ${wanted[0]}: refused: ${refusal.message} [history-unavailable] (the server closed the connection)`;
    assert.equal(text.err.split('\n'), [
      said,
      `imgcache: not fetched (the session ended): ${wanted.slice(1).join(', ')}`,
    ]);
  }),
);

test.run();
