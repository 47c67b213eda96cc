/**
 * A loopback TCP link to a port that a test can cut and give back, as a pulled cable between one node and PostgreSQL
 * would: `cut` stops listening and ends every connection through it (each side sees its connection go, and a new
 * one is refused), `restore` listens again on the same port.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface TcpLink {
  /** the port to connect to instead of the target's */
  readonly port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** cut, for good */
  close(): Promise<void>;
}

export async function startTcpLink(target: number): Promise<TcpLink> {
  const sockets = new Set<net.Socket>();
  const relay = (client: net.Socket): void => {
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  };
  let server: net.Server | null = null;
  const listen = async (port: number): Promise<number> => {
    const listening = net.createServer(relay);
    listening.listen(port, '127.0.0.1');
    await once(listening, 'listening');
    server = listening;
    return (listening.address() as net.AddressInfo).port;
  };
  const cut = async (): Promise<void> => {
    const listening = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (listening) await new Promise((resolve) => listening.close(resolve));
  };
  const port = await listen(0);
  return {
    port,
    cut,
    restore: async () => {
      if (!server) await listen(port);
    },
    close: cut,
  };
}
