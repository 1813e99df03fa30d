import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on loopback in front of a local server (the Slack stand-in), that can hold a response back: the
 * request reaches the server and takes effect (the message is posted), but its answer is not passed on until
 * `release()`, or (`delayMs`) until a while after. A client killed meanwhile never learns that its call succeeded: the
 * "sent, but not recorded" case.
 */
export interface HoldingProxy {
  /** The upstream URL with the proxy's host and port (same path), e.g. for SLACK_API_URL. */
  readonly url: string;
  /** Hold the answers to the next `n` requests whose URL (path and query) matches. */
  holdNext(match: RegExp | ((url: URL) => boolean), n?: number): void;
  /** Requests answered upstream whose answer is held here. */
  readonly holding: number;
  /** Passes held answers on (to clients still connected). */
  release(): void;
  close(): Promise<void>;
}

export async function startHoldingProxy(upstream: string, opts: { delayMs?: number } = {}): Promise<HoldingProxy> {
  const target = new URL(upstream);
  const holds: { match: (url: URL) => boolean; left: number }[] = [];
  const held: (() => void)[] = [];
  const server = createServer((req, res) => {
    const requested = new URL(req.url ?? '/', 'http://proxy');
    const hold = holds.find((h) => h.left > 0 && h.match(requested));
    if (hold) hold.left--;
    const out = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const pass = () => {
            if (res.destroyed) return;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(chunks));
          };
          if (hold) held.push(pass);
          else if (opts.delayMs) setTimeout(pass, opts.delayMs);
          else pass();
        });
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
    });
    // a client killed mid-request resets its connection: nothing to answer any more
    req.on('error', () => out.destroy());
    res.on('error', () => {});
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = new URL(upstream);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    holdNext(match, n = 1) {
      holds.push({ match: match instanceof RegExp ? (u) => match.test(u.pathname + u.search) : match, left: n });
    },
    get holding() {
      return held.length;
    },
    release() {
      for (const pass of held.splice(0)) pass();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
