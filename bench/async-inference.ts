/**
 * Asynchronous inference: what a request costs the function on the queue's path (accept: the body
 * to S3 and a message to SQS; process: the body from S3, inference, the result to S3 and an
 * EventBridge event) against the synchronous route on the same body, in one process, with the
 * bundled handler, a local S3 (s3rver) and the local stand-in for SQS and EventBridge on loopback.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { restEvent } from '../fixtures/events';
import { sqsEvent } from '../fixtures/sqs-events';
import { importCoreBundle } from '../test/support/handler';
import { startLocalMessaging } from '../tools/local-messaging';
import { startLocalS3 } from '../tools/local-s3';
import { mlpModel, mulberry32 } from '../tools/onnx';
import { ms, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

type Handler = (e: unknown, context?: { awsRequestId: string }) => Promise<unknown>;

interface InferAnswer {
  readonly outputs: ReadonlyArray<{ readonly name: string; readonly data: number[] }>;
}

const BUCKET = 'bench-async';

export const asyncInference: Bench = {
  name: 'async-inference',
  title: 'Asynchronous inference: the queue path against the synchronous route',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const repeats = ctx.quick ? 15 : 50;
    const warmup = 5;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const s3 = await startLocalS3();
    const messaging = await startLocalMessaging();
    try {
      await s3.createBucket(BUCKET);
      Object.assign(process.env, s3.env(), messaging.env());
      const model = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 2026, label: true });
      const file = path.join(ctx.tmpDir, 'async-mlp.onnx');
      fs.writeFileSync(file, model.bytes);
      const { createInferenceHandler } = await importCoreBundle();
      const env = {
        MODEL_PATH: file,
        MODEL_NAME: 'mlp',
        ASYNC_BUCKET: BUCKET,
        ASYNC_QUEUE_URL: `${messaging.url}/123456789012/q`,
        ASYNC_EVENT_BUS: 'default',
        MODEL_S3_FORCE_PATH_STYLE: 'true',
      };
      const handler = (await createInferenceHandler({ env })) as Handler;
      const session = await ort.InferenceSession.create(file, { intraOpNumThreads: availableParallelism(), interOpNumThreads: 1, graphOptimizationLevel: 'all' });
      const random = mulberry32(24);

      const rows: string[][] = [];
      const data: Record<string, Record<string, Summary>> = {};
      for (const n of [1, 1_000, 10_000]) {
        const matrix = Array.from({ length: n }, () => Array.from({ length: 4 }, () => Math.fround(random() * 4 - 2)));
        const flat = matrix.flat();
        const body = JSON.stringify({ inputs: [{ name: 'input', shape: [n, 4], datatype: 'FP32', data: flat }] });
        const tensor = new ort.Tensor('float32', Float32Array.from(flat), [n, 4]);
        const syncEvent = restEvent('POST', '/v2/models/mlp/infer', body);
        const acceptEvent = restEvent('POST', '/v2/models/mlp/infer-async', body);

        // Both paths answer what the model's plain-JS reference does.
        const expected = model.predictLabels(matrix);
        const sync = (await handler(syncEvent, { awsRequestId: 'sync' })) as { body: string };
        const labels = (r: InferAnswer) => r.outputs.find((o) => o.name === 'label')?.data;
        if (JSON.stringify(labels(JSON.parse(sync.body))) !== JSON.stringify(expected)) throw new Error('the synchronous answer differs from the reference');

        const samples: Record<'bare' | 'sync' | 'accept' | 'process', number[]> = { bare: [], sync: [], accept: [], process: [] };
        const time = async (into: number[] | undefined, fn: () => Promise<unknown>) => {
          const t = process.hrtime.bigint();
          const r = await fn();
          if (into) into.push(Number(process.hrtime.bigint() - t) / 1e6);
          return r;
        };
        for (let i = 0; i < warmup + repeats; i++) {
          const keep = i >= warmup;
          await time(keep ? samples.bare : undefined, () => session.run({ input: tensor }));
          await time(keep ? samples.sync : undefined, () => handler(syncEvent, { awsRequestId: 'sync' }));
          messaging.respondWith(() => ({}));
          const accepted = (await time(keep ? samples.accept : undefined, () => handler(acceptEvent, { awsRequestId: 'accept' }))) as { statusCode: number; body: string };
          if (accepted.statusCode !== 202) throw new Error(`accept answered ${accepted.statusCode}: ${accepted.body}`);
          const message = messaging.calls('SQS.SendMessage')[0].MessageBody as string;
          const batch = (await time(keep ? samples.process : undefined, () => handler(sqsEvent([{ body: message }])))) as { batchItemFailures: unknown[] };
          if (batch.batchItemFailures.length > 0) throw new Error('the queued request failed');
          if (i === 0) {
            // The queued path's result, from S3, against the reference too.
            const id = JSON.parse(accepted.body).id as string;
            const got = await s3.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: `results/${id}.json` }));
            if (JSON.stringify(labels(JSON.parse(await got.Body!.transformToString()))) !== JSON.stringify(expected))
              throw new Error('the asynchronous result differs from the reference');
          }
        }
        const s = { bare: summarize(samples.bare), sync: summarize(samples.sync), accept: summarize(samples.accept), process: summarize(samples.process) };
        data[`${n} rows`] = s;
        rows.push([
          `${n.toLocaleString('en-US')} row${n > 1 ? 's' : ''} (${(Buffer.byteLength(body) / 1024).toFixed(0)} KiB)`,
          ms(s.bare.p50),
          ms(s.sync.p50),
          ms(s.accept.p50),
          ms(s.process.p50),
          times((s.accept.p50 + s.process.p50) / s.sync.p50),
          ((n * 1000) / s.process.p50).toFixed(0),
        ]);
        ctx.log(`async inference: ${n} rows done`);
      }
      return {
        method:
          `In the bench process, the bundled core handler with asynchronous inference on, after ${warmup} warm-up rounds: ${repeats} rounds per size, ` +
          'each timing (`process.hrtime` around the awaited call) a bare `session.run` on a prebuilt tensor, the synchronous route (a REST event), ' +
          'the accept (`POST .../infer-async`: the body to S3, a message to SQS, the 202) and the processing of the queued message (the SQS event: ' +
          'the body from S3, inference, the result to S3, an EventBridge event). The demo-sized MLP (4-16-3); S3 is s3rver and SQS and EventBridge the ' +
          'local stand-in, all on loopback: the network to the real services is not in these figures.',
        tables: [
          {
            caption: 'Medians in milliseconds; the ratio is accept plus processing over the synchronous route; rows/s is one instance processing queued requests one after another',
            columns: ['request', 'bare session.run', 'synchronous route', 'accept', 'process from the queue', 'async / sync', 'rows/s per instance (queue)'],
            rows,
          },
        ],
        notes: [
          'What the queue path adds is S3 and messaging requests: a PUT and a SendMessage to accept, a GET, a PUT and a PutEvents to process. On this machine s3rver takes some 7–35 ms per PUT (it writes the object and its metadata to files) and the messaging stand-in about 3 ms; the real services in one region take tens of milliseconds per request too. That is small next to the requests the queue is for (long or large ones: the ratio falls as the request grows) and large next to a 1-row request, which belongs on the synchronous route.',
        ],
        data,
      };
    } finally {
      await messaging.stop();
      await s3.stop();
    }
  },
};
