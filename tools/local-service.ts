/**
 * The part every local stand-in for an AWS API shares: an HTTP server on 127.0.0.1 that records
 * each request (and whether the client hung up before the answer), asks the test's behaviour for
 * the answer, waits if the answer says so, and sends it in the service's own shape.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What is recorded of every request. */
export interface RecordedRequest {
  readonly method: string;
  /** The path as sent, still percent-encoded. */
  readonly rawPath: string;
  readonly query: URLSearchParams;
  /** Header names in lower case, as Node gives them. */
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** Whether the client hung up before the answer was sent (a client-side timeout). */
  abandoned: boolean;
}

/** Answers a request; `attempt` counts the requests since `respondWith`, from 0. */
export type ServiceBehaviour<R, A> = (request: R, attempt: number) => A | Promise<A>;

export interface RecordingServerOptions<R extends RecordedRequest, A extends { readonly delayMs?: number }> {
  /** Adds the service's own fields (an endpoint name from the path...) to what is recorded. */
  describe(request: RecordedRequest): R;
  /** The answer before any `respondWith`. */
  readonly initialBehaviour: ServiceBehaviour<R, A>;
  /** An answer for a request that is no operation of this stand-in, before any behaviour is asked. */
  reject(request: R): A | undefined;
  /** The answer when the test's behaviour throws. */
  behaviourFailed(error: Error): A;
  /** Writes the answer in the service's shape. */
  send(res: http.ServerResponse, request: R, answer: A): void;
}

export interface RecordingServer<R, A> {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** What the server received since the last `respondWith`, in order. */
  readonly requests: R[];
  /** Sets how the service answers from now on and forgets the requests recorded so far. */
  respondWith(behaviour: ServiceBehaviour<R, A>): void;
  stop(): Promise<void>;
}

export async function startRecordingServer<R extends RecordedRequest, A extends { readonly delayMs?: number }>(
  options: RecordingServerOptions<R, A>,
): Promise<RecordingServer<R, A>> {
  const requests: R[] = [];
  let behaviour = options.initialBehaviour;

  const answer = async (request: R, attempt: number): Promise<A> => {
    const rejected = options.reject(request);
    if (rejected) return rejected;
    const a = await behaviour(request, attempt);
    if (a.delayMs) await new Promise((resolve) => setTimeout(resolve, a.delayMs));
    return a;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const body = Buffer.concat(chunks);
      const request = options.describe({
        method: req.method ?? '',
        rawPath: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        text: body.toString('utf8'),
        abandoned: false,
      });
      requests.push(request);
      res.on('close', () => {
        if (!res.writableFinished) request.abandoned = true;
      });
      const attempt = requests.length - 1;
      const send = (a: A) => {
        if (request.abandoned || res.destroyed) return;
        options.send(res, request, a);
      };
      answer(request, attempt).then(send, (e: Error) => send(options.behaviourFailed(e)));
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    respondWith(next) {
      behaviour = next;
      requests.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
