import { createServer, type Socket } from 'node:net';

/**
 * A bare TCP server on loopback, for a peer that misbehaves below any protocol library: one that accepts and never
 * speaks, or speaks just enough SMTP to fail in a chosen way. Counts the connections it was given.
 */
export interface RawTcpServer {
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

export async function startRawTcpServer(onConnection: (socket: Socket) => void = () => {}): Promise<RawTcpServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    // the client giving up (a timeout) resets the connection: expected here, not an error of the test
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    get connections() {
      return connections;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
