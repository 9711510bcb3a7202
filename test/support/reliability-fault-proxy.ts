/**
 * A loopback HTTP proxy in front of the local S3 server that can break the body of a GET: cut the
 * connection, stop sending, or flip a byte. It counts the GETs that reach it.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Fault {
  /** Forward this many body bytes, then destroy the connection. */
  readonly cutAfterBytes?: number;
  /** Forward this many body bytes, then send nothing more (the connection stays open). */
  readonly stallAfterBytes?: number;
  /** Invert the body byte at this offset. */
  readonly flipByteAt?: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  /** GET requests received so far. */
  readonly gets: number;
  /** Applies to the body of every 200 answer to a GET until changed. */
  fault: Fault | undefined;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let gets = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') gets++;
    const fault = req.method === 'GET' ? proxy.fault : undefined;
    const upstreamRequest = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (upstream) => {
      const faulty = upstream.statusCode === 200 ? fault : undefined;
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      let offset = 0;
      upstream.on('data', (data: Buffer) => {
        let chunk = data;
        const limit = faulty?.cutAfterBytes ?? faulty?.stallAfterBytes;
        const stop = limit !== undefined && offset + chunk.length > limit;
        if (stop) chunk = chunk.subarray(0, limit - offset);
        const flipAt = faulty?.flipByteAt;
        if (flipAt !== undefined && flipAt >= offset && flipAt < offset + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - offset] ^= 0xff;
        }
        offset += chunk.length;
        res.write(chunk);
        if (stop) {
          upstream.destroy();
          if (faulty?.cutAfterBytes !== undefined) res.socket?.destroy();
        }
      });
      upstream.on('end', () => res.end());
    });
    upstreamRequest.on('error', () => res.destroy());
    req.pipe(upstreamRequest);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get gets() {
      return gets;
    },
    fault: undefined,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
  return proxy;
}
