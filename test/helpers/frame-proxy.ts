/**
 * A TCP proxy on 127.0.0.1 between a client and a real server that reads the frames going both ways, to tell how
 * many requests a client kept unanswered at once ([P-16]); it can also cut the connection after so many bytes
 * from the server (a transfer lost midway), hold a client's requests until the test has set a condition up, or
 * rewrite the client's requests on their way (a client that sends what ours never would).
 */
import net from 'node:net';
import { encodeFrame, encodeJsonFrame, FrameDecoder, MessageType, parseJsonBody } from '../../src/protocol/index.ts';

export interface FrameProxy {
  port: number;
  /** the most requests of one connection sent by the client and not yet answered whole, as they passed */
  maxUnanswered(): number;
  /** the code of every ERROR the server sent, in order */
  errorCodes(): string[];
  /** the body of every ERROR the server sent, in order */
  errors(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface FrameProxyOptions {
  /** cut each connection once this many bytes came from the server */
  cutAfterServerBytes?: number;
  /**
   * called for each connection: what its client sends after the server's first frame (its requests: a client sends
   * nothing after its HELLO before that frame, [P-51]) is held until the promise returned settles, then goes on
   */
  holdRequests?: () => Promise<unknown>;
  /** the body each REQUEST of a connection goes on with, given its body and its place (0, 1, …) among them */
  rewriteRequest?: (request: Record<string, unknown>, index: number) => Record<string, unknown>;
}

export async function startFrameProxy(serverPort: number, options: FrameProxyOptions = {}): Promise<FrameProxy> {
  let most = 0;
  const errors: Array<Record<string, unknown>> = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const server = net.connect(serverPort, '127.0.0.1');
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    const upward = new FrameDecoder({ maxBodyBytes: 1 << 20 });
    const downward = new FrameDecoder({ maxBodyBytes: 1 << 24 });
    let unanswered = 0;
    let fromServer = 0;
    let firstFrameSeen = false;
    const gate = options.holdRequests?.();
    let held: Buffer[] | null = gate ? [] : null;
    const release = () => {
      for (const chunk of held ?? []) server.write(chunk);
      held = null;
    };
    gate?.then(release, release);
    let requests = 0;
    const rewrite = options.rewriteRequest;
    client.on('data', (received: Buffer) => {
      const frames = upward.push(received);
      for (const frame of frames) if (frame.type === MessageType.REQUEST) unanswered += 1;
      most = Math.max(most, unanswered);
      const chunk = rewrite
        ? Buffer.concat(
            frames.map((frame) =>
              frame.type === MessageType.REQUEST
                ? encodeJsonFrame(frame.type, rewrite(parseJsonBody(frame.body), requests++))
                : encodeFrame(frame.type, frame.body),
            ),
          )
        : received;
      if (firstFrameSeen && held) held.push(chunk);
      else server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      const cut = options.cutAfterServerBytes;
      const room = cut === undefined ? chunk.length : Math.max(0, cut - fromServer);
      const passed = chunk.subarray(0, room);
      fromServer += passed.length;
      for (const frame of downward.push(passed)) {
        firstFrameSeen = true;
        if (frame.type === MessageType.ERROR) errors.push(parseJsonBody(frame.body));
        const answers =
          frame.type === MessageType.END ||
          frame.type === MessageType.ERROR ||
          (frame.type === MessageType.REPLY && parseJsonBody(frame.body).stream !== true);
        if (answers) unanswered -= 1;
      }
      client.write(passed);
      if (passed.length < chunk.length) {
        client.destroy();
        server.destroy();
      }
    });
    client.on('close', () => server.destroy());
    server.on('close', () => client.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address() as net.AddressInfo;
  return {
    port: address.port,
    maxUnanswered: () => most,
    errorCodes: () => errors.map((error) => String(error.code)),
    errors: () => [...errors],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
