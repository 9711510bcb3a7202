/**
 * A loopback HTTP proxy that makes a local S3 stand-in behave more like S3 over a network: every
 * answer waits `firstByteLatencyMs` before its headers (S3's time to first byte), and each
 * connection's body is paced to `bytesPerSecond` (S3 serves one connection at a bounded rate, so
 * only parallel connections reach a function's bandwidth). Used by the benchmarks, not by tests.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ThrottleOptions {
  /** Port of the server on 127.0.0.1 that the proxy forwards to. */
  readonly targetPort: number;
  /** Body bytes per second of one answer (one connection). */
  readonly bytesPerSecond: number;
  /** Delay before each answer's headers are sent, in milliseconds. */
  readonly firstByteLatencyMs: number;
}

export interface ThrottleProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function startThrottleProxy(options: ThrottleOptions): Promise<ThrottleProxy> {
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const received = Date.now();
    const upstreamRequest = http.request({ host: '127.0.0.1', port: options.targetPort, method: req.method, path: req.url, headers: req.headers }, (upstream) => {
      upstream.pause();
      const wait = Math.max(0, received + options.firstByteLatencyMs - Date.now());
      setTimeout(() => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        res.flushHeaders();
        const started = Date.now();
        let sent = 0;
        upstream.on('data', (chunk: Buffer) => {
          sent += chunk.length;
          const writable = res.write(chunk);
          // When the bytes sent so far are ahead of the rate, hold the source until they are not.
          const due = started + (sent / options.bytesPerSecond) * 1000 - Date.now();
          if (due > 1 || !writable) {
            upstream.pause();
            let waits = (due > 1 ? 1 : 0) + (writable ? 0 : 1);
            const resume = () => {
              waits -= 1;
              if (waits === 0) upstream.resume();
            };
            if (due > 1) setTimeout(resume, due);
            if (!writable) res.once('drain', resume);
          }
        });
        upstream.on('end', () => res.end());
        upstream.on('error', () => res.destroy());
        upstream.resume();
      }, wait);
    });
    upstreamRequest.on('error', () => res.destroy());
    res.on('close', () => upstreamRequest.destroy());
    req.pipe(upstreamRequest);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
