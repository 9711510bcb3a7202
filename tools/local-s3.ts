/**
 * An S3-compatible server on 127.0.0.1 (s3rver, files in a temporary directory) for tests and the
 * demo, with an AWS SDK v3 client already set up to talk to it. It answers If-Match on GET and HEAD
 * as S3 does, which s3rver alone ignores.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
// @ts-expect-error -- s3rver 3.7 ships no type declarations; the part used here is typed below.
import S3rverUntyped from 's3rver';

interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  /** s3rver is a Koa application: its middleware, composed when it starts to listen. */
  middleware: KoaMiddleware[];
}

/** The part of Koa's context that ifMatch uses. */
interface KoaContext {
  readonly method: string;
  status: number;
  body: unknown;
  type: string;
  get(header: string): string;
  readonly response: { get(header: string): string };
  remove(header: string): void;
}

type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/**
 * S3's If-Match on GET and HEAD, which s3rver 3.7 ignores: an object whose ETag is not one of those
 * asked for is answered 412 PreconditionFailed, as S3 answers it, instead of with its bytes.
 */
const ifMatch: KoaMiddleware = async (ctx, next) => {
  await next();
  const wanted = ctx.get('If-Match');
  if (wanted === '' || (ctx.method !== 'GET' && ctx.method !== 'HEAD') || (ctx.status !== 200 && ctx.status !== 206)) return;
  const etag = ctx.response.get('ETag');
  if (wanted.split(',').some((tag) => tag.trim() === '*' || tag.trim() === etag)) return;
  (ctx.body as { destroy?: () => void } | undefined)?.destroy?.();
  for (const header of ['Content-Range', 'Accept-Ranges', 'ETag', 'Last-Modified']) ctx.remove(header);
  ctx.status = 412;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-Match</Condition></Error>';
};

const S3rver = S3rverUntyped as new (options: S3rverOptions) => S3rverInstance;

/** The only key pair s3rver accepts. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

export interface LocalS3Options {
  /**
   * Where s3rver keeps buckets and objects.
   * @default - a new directory under the OS temp dir, deleted by `stop()`
   */
  readonly directory?: string;
}

export interface LocalS3 {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  /**
   * A new client for this server, destroyed by `stop()`. `overrides` replace settings, e.g. the
   * endpoint of a proxy in front of the server or wrong credentials.
   */
  client(overrides?: S3ClientConfig): S3Client;
  createBucket(name: string): Promise<void>;
  /** Uploads a Buffer, or streams the file at a path without reading it whole into memory. */
  putObject(bucket: string, key: string, body: Buffer | string): Promise<{ etag: string }>;
  /** The environment a handler process needs to reach this server with the SDK's defaults. */
  env(): Record<string, string>;
  /** Closes the server and every client handed out; deletes the directory if it was created here. */
  stop(): Promise<void>;
}

export async function startLocalS3(options: LocalS3Options = {}): Promise<LocalS3> {
  const ownDirectory = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(path.join(tmpdir(), 'local-s3-')));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  // Around all of s3rver's own middleware, so that it sees the answer s3rver made.
  server.middleware.unshift(ifMatch);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];

  const client = (overrides: S3ClientConfig = {}): S3Client => {
    const created = new S3Client({
      endpoint,
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
      // With the default (WHEN_SUPPORTED) a streamed upload is sent aws-chunked, and s3rver
      // stores the chunk framing as part of the object.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...overrides,
    });
    clients.push(created);
    return created;
  };
  const adminClient = client();

  return {
    endpoint,
    port,
    client,
    async createBucket(name) {
      await adminClient.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putObject(bucket, key, body) {
      const upload = typeof body === 'string' ? { Body: createReadStream(body), ContentLength: (await stat(body)).size } : { Body: body, ContentLength: body.length };
      const output = await adminClient.send(new PutObjectCommand({ Bucket: bucket, Key: key, ...upload }));
      if (output.ETag === undefined) {
        throw new Error(`s3rver returned no ETag for s3://${bucket}/${key}`);
      }
      return { etag: output.ETag };
    },
    env() {
      return {
        AWS_ENDPOINT_URL_S3: endpoint,
        MODEL_S3_FORCE_PATH_STYLE: 'true',
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      };
    },
    async stop() {
      for (const created of clients) {
        created.destroy();
      }
      await server.close();
      if (ownDirectory) {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
