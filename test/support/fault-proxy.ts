/**
 * A loopback HTTP proxy in front of the local S3 server that records what crosses the wire and can
 * break the answer to a GET: cut the connection, stop sending (for good, or until released), flip
 * a byte, rewrite headers, or never answer. It can also add headers to HEAD answers: the object
 * checksums (and a part's size) that s3rver does not keep.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Fault {
  /** Forward this many body bytes, then destroy the connection. */
  cutAfterBytes?: number;
  /** Forward this many body bytes, then send nothing more (connection left open). */
  stallAfterBytes?: number;
  /** Forward this many body bytes, then wait for `releaseHeld()` before sending the rest. */
  holdAfterBytes?: number;
  /** Accept the request and never answer it. */
  stallBeforeHeaders?: boolean;
  /** Accept the request and pass it on only at `releaseHeld()`: its answer comes late, whole. */
  holdBeforeHeaders?: boolean;
  /** Invert the body byte at this offset. */
  flipByteAt?: number;
  /** Headers to add to or replace in a 200 or 206 response. */
  setHeaders?: Record<string, string>;
  /** Only GETs whose Range header matches this (e.g. `/-2097151$/`, every request of a range ending there) get the fault. */
  rangeMatching?: RegExp;
  /** Only this many GETs get the fault (counted down as they do); then it no longer applies. */
  times?: number;
}

export interface SeenRequest {
  method: string;
  url: string;
  ifNoneMatch?: string;
  status?: number;
  bodyBytes: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Every request so far, in order (clear it with `requests.length = 0`). */
  requests: SeenRequest[];
  /** The URLs of the GET requests among them. */
  readonly gets: string[];
  /** Applies to GET requests until changed. */
  fault: Fault | undefined;
  /** Headers to add to or replace in the answer to a HEAD request, by its URL; until changed. */
  headHeaders: ((url: string) => Record<string, string> | undefined) | undefined;
  /** How many answers are held (`holdAfterBytes`, `holdBeforeHeaders`) right now. */
  readonly heldCount: number;
  /** The Range header of every GET so far (`''` when it had none); clear it with `ranges.length = 0`. */
  ranges: string[];
  /** The most GET answers in progress at once since the last `resetConcurrency()`. */
  readonly maxConcurrentGets: number;
  resetConcurrency(): void;
  /** Sends the rest of every held answer. */
  releaseHeld(): void;
  close(): Promise<void>;
}

/** Forwards to 127.0.0.1:targetPort; the fault applies to GET requests only. */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const held: Array<() => void> = [];
  let activeGets = 0;
  let maxActiveGets = 0;
  const proxy: FaultProxy = {
    endpoint: '',
    requests: [],
    get gets() {
      return this.requests.filter((r) => r.method === 'GET').map((r) => r.url);
    },
    fault: undefined,
    headHeaders: undefined,
    ranges: [],
    get maxConcurrentGets() {
      return maxActiveGets;
    },
    resetConcurrency() {
      maxActiveGets = activeGets;
    },
    get heldCount() {
      return held.length;
    },
    releaseHeld() {
      for (const release of held.splice(0)) release();
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      ifNoneMatch: req.headers['if-none-match'],
      bodyBytes: 0,
    };
    proxy.requests.push(seen);
    const range = req.headers.range ?? '';
    let fault = req.method === 'GET' ? proxy.fault : undefined;
    if (fault?.rangeMatching !== undefined && !fault.rangeMatching.test(range)) fault = undefined;
    if (fault?.times !== undefined) {
      if (fault.times <= 0) fault = undefined;
      else fault.times -= 1;
    }
    if (req.method === 'GET') {
      proxy.ranges.push(range);
      activeGets += 1;
      maxActiveGets = Math.max(maxActiveGets, activeGets);
      res.once('close', () => {
        activeGets -= 1;
      });
    }
    if (fault?.stallBeforeHeaders) {
      req.resume();
      return;
    }
    const forward = () => {
      const upstreamRequest = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (upstream) => {
        const status = upstream.statusCode ?? 502;
        seen.status = status;
        const faulty = status === 200 || status === 206 ? fault : undefined;
        const extra = req.method === 'HEAD' && status === 200 ? proxy.headHeaders?.(req.url ?? '') : undefined;
        res.writeHead(status, { ...upstream.headers, ...faulty?.setHeaders, ...extra });
        let offset = 0;
        let holding = faulty?.holdAfterBytes;
        upstream.on('data', (data: Buffer) => {
          let chunk = data;
          if (holding !== undefined && offset + chunk.length > holding) {
            const head = chunk.subarray(0, holding - offset);
            const tail = chunk.subarray(head.length);
            holding = undefined;
            offset += head.length;
            seen.bodyBytes += head.length;
            res.write(head);
            upstream.pause();
            held.push(() => {
              offset += tail.length;
              seen.bodyBytes += tail.length;
              res.write(tail);
              upstream.resume();
            });
            return;
          }
          const limit = faulty?.cutAfterBytes ?? faulty?.stallAfterBytes;
          const stop = limit !== undefined && offset + chunk.length > limit;
          if (stop) {
            chunk = chunk.subarray(0, limit - offset);
          }
          const flipAt = faulty?.flipByteAt;
          if (flipAt !== undefined && flipAt >= offset && flipAt < offset + chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[flipAt - offset] ^= 0xff;
          }
          offset += chunk.length;
          seen.bodyBytes += chunk.length;
          res.write(chunk);
          if (stop) {
            upstream.destroy();
            if (faulty?.cutAfterBytes !== undefined) {
              res.socket?.destroy();
            }
          }
        });
        upstream.on('end', () => res.end());
      });
      upstreamRequest.on('error', () => res.destroy());
      req.pipe(upstreamRequest);
    };
    if (fault?.holdBeforeHeaders) held.push(forward);
    else forward();
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    for (const socket of sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  };
  return proxy;
}
