/**
 * A TCP relay in front of a real server (Redis, PostgreSQL) that a test controls, to play the
 * failures the shared servers must never suffer: `cut` (the server stopped: connections dropped,
 * new ones refused), `restore` (it came back), `pause` (it hangs: connections stay open but nothing
 * moves, so clients wait for their timeouts) and `resume` (bytes held back flow again, in order).
 * Loopback only.
 */
import net from 'node:net';

export interface Relay {
  port: number;
  /** Bytes clients sent through the relay so far (while paused: bytes they tried to send). */
  readonly bytesFromClients: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'postgres:': 5432, 'postgresql:': 5432 };

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Chunks held back while paused, per direction, in order. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

export async function startRelay(target: string): Promise<Relay> {
  const url = new URL(target);
  const host = url.hostname;
  const targetPort = Number(url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : url.port);
  const pairs = new Set<Pair>();
  let paused = false;
  let bytes = 0;
  let port = 0;
  let server: net.Server | undefined;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const pair: Pair = { client, upstream: net.connect(targetPort, host), toUpstream: [], toClient: [] };
        pairs.add(pair);
        client.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (paused) pair.toUpstream.push(chunk);
          else pair.upstream.write(chunk);
        });
        pair.upstream.on('data', (chunk: Buffer) => {
          if (paused) pair.toClient.push(chunk);
          else client.write(chunk);
        });
        const drop = () => {
          client.destroy();
          pair.upstream.destroy();
          pairs.delete(pair);
        };
        client.on('error', drop).on('close', drop);
        pair.upstream.on('error', drop).on('close', drop);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const address = s.address();
        if (address !== null && typeof address === 'object') port = address.port;
        server = s;
        resolve();
      });
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      if (s === undefined) resolve();
      else s.close(() => resolve());
    });

  await listen();
  return {
    port,
    get bytesFromClients() {
      return bytes;
    },
    cut,
    restore: listen,
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const pair of pairs) {
        for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    close: cut,
  };
}
