/**
 * A bare TCP peer for wire-level tests: sends whatever bytes a test wants and reads the server's frames one by one,
 * with no client library in between.
 */
import net from 'node:net';
import { encodeJsonFrame, type Frame, FrameDecoder, MessageType, parseJsonBody } from '../../src/protocol/index.ts';

export class RawConnection {
  readonly socket: net.Socket;
  readonly #decoder = new FrameDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
  readonly #frames: Frame[] = [];
  #waiters: Array<() => void> = [];
  #ended = false;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#frames.push(...this.#decoder.push(chunk));
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('end', () => {
        this.#ended = true;
        this.#wake();
        resolve();
      });
      socket.on('close', () => {
        this.#ended = true;
        this.#wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  /** A session admitted: connected, its HELLO (version 1) sent and the server's WELCOME read. */
  static async admitted(port: number): Promise<RawConnection> {
    const peer = await RawConnection.open(port);
    peer.hello();
    await peer.nextJson(MessageType.WELCOME);
    return peer;
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendJson(type: number, body: object): void {
    this.send(encodeJsonFrame(type, body));
  }

  hello(versions: number[] = [1]): void {
    this.sendJson(MessageType.HELLO, { versions });
  }

  /** [P-40] The receipt a client sends once it has read the END of the stream answering request `id`. */
  received(id: number): void {
    this.sendJson(MessageType.RECEIVED, { id });
  }

  /**
   * Reads the rest of a stream (DATA frames up to its END, [P-24]) and sends its RECEIVED [P-40]: the content and the
   * END's body.
   */
  async readStream(id: number): Promise<{ content: Buffer; end: Record<string, unknown> }> {
    const pieces: Buffer[] = [];
    for (;;) {
      const frame = await this.next();
      if (!frame) throw new Error(`the connection closed in the middle of the stream answering ${id}`);
      if (frame.type === MessageType.DATA) {
        pieces.push(frame.body);
        continue;
      }
      if (frame.type !== MessageType.END) throw new Error(`expected DATA or END, got 0x${frame.type.toString(16)}`);
      this.received(id);
      return { content: Buffer.concat(pieces), end: parseJsonBody(frame.body) };
    }
  }

  /** The next frame from the server, or null when the server closed the connection first. */
  async next(): Promise<Frame | null> {
    for (;;) {
      const frame = this.#frames.shift();
      if (frame) return frame;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async nextJson(expectedType: number): Promise<Record<string, unknown>> {
    const frame = await this.next();
    if (!frame) throw new Error(`expected a frame of type 0x${expectedType.toString(16)}, but the connection closed`);
    if (frame.type !== expectedType) {
      throw new Error(
        `expected type 0x${expectedType.toString(16)}, got 0x${frame.type.toString(16)}: ${frame.body.toString()}`,
      );
    }
    return parseJsonBody(frame.body);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
