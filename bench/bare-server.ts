/**
 * The bare baseline: what a Node TCP server can do with none of imgcache's work (no handshake, no session machine, no
 * quota, no history). It holds every image of a folder in memory and answers each length-prefixed request, a frame
 * of [P-2] shape whose body is an image name, with one DATA frame: the 5-byte header and the image written as two
 * buffers in one corked writev, the image never copied. An unknown name gets an empty ERROR frame (0x12).
 *
 *   node --import tsx bench/bare-server.ts --cache-dir DIR [--port 0] [--host 127.0.0.1]
 *
 * Prints `listening <port>` once it listens; stops on SIGTERM or SIGINT.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const HEADER_BYTES = 5;
const DATA_TYPE = 0x20;
const ERROR_TYPE = 0x12;
/** requests are image names: a longer frame is a broken client */
const MAX_REQUEST_BYTES = 4096;

function header(type: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(HEADER_BYTES);
  bytes.writeUInt32BE(length, 0);
  bytes[4] = type;
  return bytes;
}

function loadImages(folder: string): Map<string, { header: Buffer; content: Buffer }> {
  const images = new Map<string, { header: Buffer; content: Buffer }>();
  for (const name of readdirSync(folder)) {
    const file = path.join(folder, name);
    if (!statSync(file).isFile()) continue;
    const content = readFileSync(file);
    images.set(name, { header: header(DATA_TYPE, content.length), content });
  }
  return images;
}

function serve(socket: net.Socket, images: Map<string, { header: Buffer; content: Buffer }>): void {
  const notFound = header(ERROR_TYPE, 0);
  let pending: Buffer = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let bytes = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let wroteAll = true;
    socket.cork();
    while (bytes.length >= HEADER_BYTES) {
      const length = bytes.readUInt32BE(0);
      if (length > MAX_REQUEST_BYTES) {
        socket.destroy();
        return;
      }
      if (bytes.length < HEADER_BYTES + length) break;
      const image = images.get(bytes.toString('utf8', HEADER_BYTES, HEADER_BYTES + length));
      if (image) {
        socket.write(image.header);
        wroteAll = socket.write(image.content);
      } else wroteAll = socket.write(notFound);
      bytes = bytes.subarray(HEADER_BYTES + length);
    }
    socket.uncork();
    pending = bytes.length === 0 ? pending.subarray(0, 0) : Buffer.from(bytes);
    if (!wroteAll) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  });
}

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const folder = values['cache-dir'];
if (!folder) {
  console.error('bare-server: --cache-dir is required');
  process.exit(2);
}
const images = loadImages(folder);
const server = net.createServer((socket) => serve(socket, images));
server.listen(Number(values.port), values.host, () => {
  console.log(`listening ${(server.address() as net.AddressInfo).port}`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
