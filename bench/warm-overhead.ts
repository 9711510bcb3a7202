/**
 * Warm overhead: the bundled handler's whole path (API Gateway REST event in, JSON decode,
 * inference, JSON encode, response out) against a bare `session.run` on the same tensor, in one
 * process, after warm-up.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { restEvent } from '../fixtures/events';
import { importCoreBundle } from '../test/support/handler';
import { buildOnnxModel, logisticRegressionModel, mlpModel, mulberry32 } from '../tools/onnx';
import { handlerOrtOptions } from './lib/session-options';
import { summarize, times, us, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

interface Case {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly input: string;
  readonly output: string;
  readonly rows: number;
  readonly width: number;
  /** The input's shape, when it is not [rows, width]. */
  readonly shape?: readonly number[];
  /** Inputs and outputs as binary tensor data (the extension), not JSON. */
  readonly binary?: boolean;
  /** The model's plain-JS reference, to check both paths compute the same thing. */
  predict(rows: number[][]): number[];
}

function cases(): Case[] {
  const lr = logisticRegressionModel({ features: 100, seed: 1 });
  const mlp = mlpModel({ seed: 2 });
  const lrCase = (rows: number): Case => ({
    label: `logistic regression, 100 features, ${rows} row${rows > 1 ? 's' : ''}`,
    bytes: lr.bytes,
    input: 'features',
    output: 'probability',
    rows,
    width: lr.features,
    predict: (r) => lr.predict(r),
  });
  const image = imageModel();
  return [
    lrCase(1),
    lrCase(64),
    { ...lrCase(64), label: 'logistic regression, 100 features, 64 rows, binary tensors', binary: true },
    {
      label: '1×3×224×224 FP32 image (GlobalAveragePool), binary tensors',
      bytes: image,
      input: 'image',
      output: 'pooled',
      rows: 1,
      width: 3 * 224 * 224,
      shape: [1, 3, 224, 224],
      binary: true,
      predict: (r) => [0, 1, 2].map((c) => r[0].slice(c * 224 * 224, (c + 1) * 224 * 224).reduce((a, b) => a + b, 0) / (224 * 224)),
    },
    {
      label: `MLP ${mlp.inputs}-${mlp.hidden}-${mlp.classes}, 1 row`,
      bytes: mlp.bytes,
      input: 'input',
      output: 'probabilities',
      rows: 1,
      width: mlp.inputs,
      predict: (r) => mlp.predict(r).flat(),
    },
  ];
}

/** A model that reads every value of an image and answers three: one mean per channel. */
function imageModel(): Uint8Array {
  return buildOnnxModel({
    graphName: 'pool',
    inputs: [{ name: 'image', elemType: 'float32', shape: [1, 3, 224, 224] }],
    outputs: [{ name: 'pooled', elemType: 'float32', shape: [1, 3, 1, 1] }],
    initializers: [],
    nodes: [{ opType: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] }],
  });
}

type Path = 'bare' | 'json' | 'handler';

export const warmOverhead: Bench = {
  name: 'warm-overhead',
  title: 'Warm overhead of the handler',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const blocks = ctx.quick ? 4 : 10;
    const perBlock = ctx.quick ? 250 : 500;
    const warmup = 300;
    // As the constructs leave a quiet function: no per-request log lines or metrics in the figures.
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { createInferenceHandler } = await importCoreBundle();
    const random = mulberry32(6);

    const rows: string[][] = [];
    const data: Record<string, Record<Path, Summary> & { bodyBytes: number }> = {};
    for (const c of cases()) {
      const file = path.join(ctx.tmpDir, `warm-${c.input}-${c.width}.onnx`);
      fs.writeFileSync(file, c.bytes);
      const handler = (await createInferenceHandler({ env: { MODEL_PATH: file, MODEL_NAME: 'model' } })) as (
        e: unknown,
        context: { awsRequestId: string },
      ) => Promise<{ statusCode: number; body: string }>;
      // The handler's own session and run options, from the module it takes them from, so that
      // only what surrounds session.run differs.
      const options = handlerOrtOptions(file);
      const session = await ort.InferenceSession.create(file, options.session);

      const matrix = Array.from({ length: c.rows }, () => Array.from({ length: c.width }, () => Math.fround(random() * 2 - 1)));
      const flat = matrix.flat();
      const shape = [...(c.shape ?? [c.rows, c.width])];
      const tensor = new ort.Tensor('float32', Float32Array.from(flat), shape);
      const values = Float32Array.from(flat);
      const body = c.binary
        ? binaryBody(
            { inputs: [{ name: c.input, shape, datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }], parameters: { binary_data_output: true } },
            values,
          )
        : { text: JSON.stringify({ inputs: [{ name: c.input, shape, datatype: 'FP32', data: flat }] }), headerLength: 0 };
      const event = c.binary
        ? {
            ...restEvent('POST', '/v2/models/model/infer', undefined, {
              headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(body.headerLength) },
            }),
            body: body.text,
            isBase64Encoded: true,
          }
        : restEvent('POST', '/v2/models/model/infer', body.text);
      const context = { awsRequestId: 'bench-warm' };

      const paths: Record<Path, () => Promise<unknown>> = {
        bare: () => session.run({ [c.input]: tensor }, options.run),
        // What a binary protocol must do at least: the body out of base64, the header parsed, the
        // tensor over the bytes, the output's bytes back in base64 after a JSON header.
        json: c.binary
          ? async () => {
              const bytes = Buffer.from(event.body!, 'base64');
              const header = JSON.parse(bytes.subarray(0, body.headerLength).toString('utf8')) as { inputs: { name: string; shape: number[] }[] };
              const [input] = header.inputs;
              const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + body.headerLength, bytes.byteOffset + bytes.length));
              const out = await session.run({ [input.name]: new ort.Tensor('float32', data, input.shape) }, options.run);
              const value = out[c.output];
              const raw = value.data as Float32Array;
              const json = Buffer.from(JSON.stringify({ outputs: [{ name: c.output, datatype: 'FP32', shape: value.dims, parameters: { binary_data_size: raw.byteLength } }] }));
              return { statusCode: 200, body: Buffer.concat([json, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)]).toString('base64') };
            }
          : // What any JSON-over-HTTP server must do at least: a reference between the two.
            async () => {
              const request = JSON.parse(event.body!) as { inputs: { name: string; shape: number[]; data: number[] }[] };
              const [input] = request.inputs;
              const out = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) }, options.run);
              const value = out[c.output];
              return {
                statusCode: 200,
                body: JSON.stringify({ outputs: [{ name: c.output, datatype: 'FP32', shape: value.dims, data: Array.from(value.data as Float32Array) }] }),
              };
            },
        handler: () => handler(event, context),
      };
      await checkAgreement(c, matrix, paths, session, tensor);

      const samples: Record<Path, number[]> = { bare: [], json: [], handler: [] };
      for (const p of Object.keys(paths) as Path[]) {
        for (let i = 0; i < warmup; i++) await paths[p]();
      }
      // Blocks, not one call of each in turn: onnxruntime's worker threads spin for a while after a run,
      // and a call right after another session's run would pay for that spinning.
      for (let b = 0; b < blocks; b++) {
        for (const p of rotate(Object.keys(paths) as Path[], b)) {
          const run = paths[p];
          for (let i = 0; i < perBlock; i++) {
            const t = process.hrtime.bigint();
            await run();
            samples[p].push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }
      }
      const s = { bare: summarize(samples.bare), json: summarize(samples.json), handler: summarize(samples.handler) };
      data[c.label] = { ...s, bodyBytes: Buffer.byteLength(body.text) };
      rows.push([
        c.label,
        `${us(s.bare.p50)} / ${us(s.bare.p99)}`,
        `${us(s.json.p50)} / ${us(s.json.p99)}`,
        `${us(s.handler.p50)} / ${us(s.handler.p99)}`,
        `${times(s.handler.p50 / s.bare.p50)} / ${times(s.handler.p99 / s.bare.p99)}`,
        times(s.handler.p50 / s.json.p50),
        us(s.handler.p50 - s.bare.p50),
      ]);
      ctx.log(`warm overhead: ${c.label} done`);
    }
    return {
      method:
        `In the bench process, after ${warmup} warm-up calls of each path: ${blocks} blocks of ${perBlock} timed calls per path ` +
        '(`process.hrtime` around each awaited call), the paths taking turns block by block. **bare** is `session.run` on a ' +
        'prebuilt tensor; **handler** is the bundled core handler (`createInferenceHandler`, the code the Lambda bundle runs) ' +
        'given an API Gateway REST event whose body is the same tensor as JSON, up to its JSON response; **JSON minimum** is ' +
        'a reference in between: `JSON.parse`, a tensor from the array, `session.run`, `JSON.stringify` of the output. ' +
        'The binary tensor rows send the tensor as binary tensor data (a base64 body, as API Gateway passes it) and ask for ' +
        'binary outputs; their reference decodes the base64, parses the JSON header, runs on the bytes and writes the ' +
        "output's bytes after a JSON header in base64. " +
        "The three share the handler's onnxruntime options, taken from the module the handler creates its sessions with " +
        '(threads = cores, inter-op 1, all graph optimisations, no memory arena, its run options); ' +
        'POWERTOOLS_LOG_LEVEL=SILENT, POWERTOOLS_METRICS_DISABLED=true.',
      tables: [
        {
          columns: [
            'model, batch',
            'bare session.run p50 / p99 (µs)',
            'JSON minimum p50 / p99 (µs)',
            'handler p50 / p99 (µs)',
            'handler ÷ bare p50 / p99',
            'handler ÷ JSON minimum p50',
            'handler − bare p50 (µs)',
          ],
          rows,
        },
      ],
      notes: [
        `Samples per path and model: ${blocks * perBlock}. p99 includes garbage collection pauses, which the handler's allocations cause and a bare run mostly does not.`,
        'Request body sizes: ' +
          Object.entries(data)
            .map(([label, d]) => `${label}: ${d.bodyBytes} bytes`)
            .join('; ') +
          '.',
      ],
      data: { blocks, perBlock, warmup, unit: 'ms per call', results: data },
    };
  },
};

/** A request of the binary tensor data extension, base64-encoded as API Gateway passes it, and its JSON header's length. */
function binaryBody(header: unknown, values: Float32Array): { text: string; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { text: Buffer.concat([json, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]).toString('base64'), headerLength: json.length };
}

/** The values of an output in an answer, JSON or binary (its bytes after the JSON header). */
function answerValues(response: { headers?: Record<string, string>; body: string; isBase64Encoded?: boolean }, output: string): number[] | undefined {
  if (!response.isBase64Encoded) return (JSON.parse(response.body) as { outputs?: { name: string; data: number[] }[] }).outputs?.find((o) => o.name === output)?.data;
  const bytes = Buffer.from(response.body, 'base64');
  const length = Number(response.headers?.['Inference-Header-Content-Length']);
  const raw = bytes.subarray(length);
  return Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));
}

function rotate<T>(items: readonly T[], by: number): T[] {
  return items.map((_, i) => items[(i + by) % items.length]);
}

/** Both paths and the model's own JS reference must agree before anything is timed. */
async function checkAgreement(c: Case, matrix: number[][], paths: Record<Path, () => Promise<unknown>>, session: ort.InferenceSession, tensor: ort.Tensor): Promise<void> {
  const expected = c.predict(matrix);
  const bare = Array.from((await session.run({ [c.input]: tensor }))[c.output].data as Float32Array);
  const response = (await paths.handler()) as { statusCode: number; headers?: Record<string, string>; body: string; isBase64Encoded?: boolean };
  const handled = answerValues(response, c.output);
  const close = (a: readonly number[] | undefined) => a?.length === expected.length && a.every((v, i) => Math.abs(v - expected[i]) < 1e-4);
  if (response.statusCode !== 200 || !close(handled) || !close(bare)) {
    throw new Error(`warm overhead, ${c.label}: the paths disagree with the model's reference (status ${response.statusCode}, ${response.body.slice(0, 300)})`);
  }
}
