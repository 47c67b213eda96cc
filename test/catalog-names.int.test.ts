/**
 * Names the catalog must not hold, over real sockets [P-38]: a file whose name has a control character is neither
 * listed nor served, and the operator's log says once which file was skipped and why, at start and while running.
 */
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageType } from '../src/protocol/index.ts';
import { sequenceOfCodes } from '../src/server/code-source.ts';
import { startServer } from '../src/server/server.ts';
import { copySampleImages } from './helpers/live-images.ts';
import { RawConnection } from './helpers/raw-connection.ts';
import { within } from './helpers/within.ts';

const SKIPPED = 'image catalog: file not served';

/** A logger at warn whose lines a test can read. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'warn', base: undefined }, sink), lines };
}

test('[P-38] a file named with control characters is not listed nor served; the log says so once, at start and later', async () => {
  const { folder, images } = copySampleImages();
  writeFileSync(path.join(images, 'bell\x07.png'), 'x');
  writeFileSync(path.join(images, 'new\nline.png'), 'x');
  const { logger, lines } = capturedLogger();
  const server = await startServer(
    {
      host: '127.0.0.1',
      port: 0,
      cacheDir: images,
      database: path.join(folder, 'history.sqlite'),
      catalogRescanMs: 100,
    },
    { codeSource: sequenceOfCodes([950]), logger },
  );
  const skippedLines = () =>
    lines.filter((line) => line.msg === SKIPPED).map((line) => [line.name, line.reason] as [unknown, unknown]);
  try {
    const peer = await RawConnection.open(server.address.port);
    peer.hello();
    await peer.nextJson(MessageType.WELCOME);
    peer.sendJson(MessageType.REQUEST, { id: 1, command: 'list' });
    const names = ((await peer.nextJson(MessageType.REPLY)).images as Array<{ name: string }>).map((i) => i.name);
    assert.equal(names, ['checkerboard-dice.png', 'mandelbrot.png', 'sunset.png', 'terrain-large.png']);
    peer.sendJson(MessageType.REQUEST, { id: 2, command: 'get', image: 'bell\x07.png' });
    assert.is((await peer.nextJson(MessageType.ERROR)).code, 'image-not-found');
    assert.equal(skippedLines().sort(), [
      ['bell\x07.png', 'control-character'],
      ['new\nline.png', 'control-character'],
    ]);
    await server.catalog.rescan();
    await server.catalog.rescan();
    assert.is(skippedLines().length, 2, 'once, not at every look');
    const seen = once(server.catalog, 'skipped');
    writeFileSync(path.join(images, 'esc\x1b[31m.png'), 'x');
    await within(seen, 'the new file skipped');
    assert.equal(skippedLines()[2], ['esc\x1b[31m.png', 'control-character']);
    peer.destroy();
  } finally {
    await server.close();
    rmSync(folder, { recursive: true, force: true });
  }
});

test.run();
