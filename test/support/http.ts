import * as http from 'node:http';
import { type RunningInferenceServer, startInferenceServer } from '../../lib/local/inference-server';
import type { Handler } from './handler';

/** A handler behind the library's local server (`serve`'s), on a free port of 127.0.0.1. */
export function serveOverHttp(handler: Handler): Promise<RunningInferenceServer> {
  return startInferenceServer({ handler: (event, context) => handler(event, context), port: 0 });
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly body: any;
  readonly ms: number;
}

export interface RawRequest {
  readonly method?: string;
  readonly path: string;
  /** Sent exactly as given: no Content-Type is added (fetch would add `text/plain` to a string body). */
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** Sends a request built by hand, byte for byte, and reads the whole answer. */
export function send(baseUrl: string, request: RawRequest): Promise<HttpAnswer> {
  const url = new URL(request.path, baseUrl);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: request.method ?? 'POST', headers: request.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body, ms: performance.now() - started });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(request.body);
  });
}

/** POSTs a JSON text to a model's infer route with `Content-Type: application/json`. */
export function postJson(baseUrl: string, model: string, text: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }): Promise<HttpAnswer> {
  return send(baseUrl, { path: `/v2/models/${model}/infer`, headers, body: text });
}
