// Loads onnxruntime-node the way a Lambda function does (resolved through NODE_PATH, e.g.
// /opt/nodejs/node_modules from a layer), runs the models a job file lists, and prints one JSON line
// with their outputs and timings. Plain CommonJS for any Node.js >= 18: the arm64 test runs it under
// an emulated arm64 Node.js, and on the host for the x86_64 answers.
//
//   node onnxruntime-probe.cjs job.json
//
// job.json: { "models": [{ "name", "file", "feeds": { "<input>": { "type", "dims", "data" } }, "sessionOptions" }] }
// `"intraOpNumThreads": "availableParallelism"` in sessionOptions stands for os.availableParallelism(), as
// the library's handler sets it. Sessions stay open until the end, so the threads each one starts can be
// counted. Phase markers go to stderr between onnxruntime's own messages, so each message can be placed.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const { performance } = require('node:perf_hooks');

const TYPED_ARRAYS = {
  float32: Float32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

/** Where libonnxruntime is mapped: lets an instruction trace (qemu -d in_asm) be placed in it. */
function onnxruntimeMappings() {
  try {
    return fs
      .readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((line) => line.includes('libonnxruntime'));
  } catch {
    return [];
  }
}

function threadCount() {
  try {
    return fs.readdirSync('/proc/self/task').length;
  } catch {
    return undefined;
  }
}

function marker(phase) {
  process.stderr.write(`@@probe ${phase}\n`);
}

function sessionOptions(options) {
  const resolved = { ...options };
  if (resolved.intraOpNumThreads === 'availableParallelism') {
    resolved.intraOpNumThreads = os.availableParallelism();
  }
  return resolved;
}

function tensorData(feed) {
  if (feed.type === 'string') {
    return feed.data;
  }
  if (feed.type === 'int64') {
    return BigInt64Array.from(feed.data.map((v) => BigInt(v)));
  }
  const TypedArray = TYPED_ARRAYS[feed.type];
  if (!TypedArray) {
    throw new Error(`unsupported input type ${feed.type}`);
  }
  return TypedArray.from(feed.type === 'bool' ? feed.data.map((v) => (v ? 1 : 0)) : feed.data);
}

function plainOutput(tensor) {
  let data;
  if (tensor.type === 'string') {
    data = Array.from(tensor.data);
  } else if (tensor.type === 'bool') {
    data = Array.from(tensor.data, (v) => v !== 0);
  } else {
    data = Array.from(tensor.data, (v) => (typeof v === 'bigint' ? Number(v) : v));
  }
  return { type: tensor.type, dims: Array.from(tensor.dims), data };
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const ms = (start) => Math.round((performance.now() - start) * 10) / 10;

  marker('require');
  let start = performance.now();
  const ort = require('onnxruntime-node');
  const requireMs = ms(start);
  const ortVersion = require('onnxruntime-node/package.json').version;
  const resolved = require.resolve('onnxruntime-node');

  const models = [];
  const sessions = [];
  for (const model of job.models) {
    marker(`create ${model.name}`);
    start = performance.now();
    const threadsBefore = threadCount();
    const session = await ort.InferenceSession.create(model.file, sessionOptions(model.sessionOptions));
    const createMs = ms(start);
    // onnxruntime starts its intra-op thread pool (size - 1 threads) with the session.
    const sessionThreads = threadCount() - threadsBefore;
    const feeds = {};
    for (const [name, feed] of Object.entries(model.feeds)) {
      feeds[name] = new ort.Tensor(feed.type, tensorData(feed), feed.dims);
    }
    marker(`run ${model.name}`);
    start = performance.now();
    const results = await session.run(feeds);
    const firstRunMs = ms(start);
    start = performance.now();
    await session.run(feeds);
    const secondRunMs = ms(start);
    const outputs = {};
    for (const [name, tensor] of Object.entries(results)) {
      outputs[name] = plainOutput(tensor);
    }
    sessions.push(session);
    models.push({ name: model.name, createMs, firstRunMs, secondRunMs, sessionThreads, outputs });
  }
  for (const session of sessions) {
    await session.release();
  }
  marker('done');
  process.stdout.write(
    `${JSON.stringify({
      arch: process.arch,
      nodeVersion: process.version,
      ortVersion,
      resolved,
      cpus: os.cpus().length,
      availableParallelism: os.availableParallelism ? os.availableParallelism() : undefined,
      requireMs,
      onnxruntimeMappings: onnxruntimeMappings(),
      models,
    })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`@@probe failed: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
