// One cold start, in a fresh process: the handler bundle answering its first request, or the floor
// (onnxruntime alone: load the model file, run once). Times are taken here, relative to the
// parent's process.hrtime just before spawn() (BENCH_T0): CLOCK_MONOTONIC is shared by processes.
const t0 = BigInt(process.env.BENCH_T0);
const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
const started = since();

const { createRequire } = await import('node:module');
const { readFileSync } = await import('node:fs');

// The event and the input come in files: a MatMul model's input is too long for an environment variable.
let ready;
let answer;
if (process.env.BENCH_MODE === 'handler') {
  // The bundle reads its configuration (MODEL_PATH or MODEL_S3_URI, ...) from process.env and
  // loads the model in its top-level await, as in Lambda's init phase.
  const { handler } = await import(new URL('../../assets/handlers/inference/index.mjs', import.meta.url).href);
  ready = since();
  const response = await handler(JSON.parse(readFileSync(process.env.BENCH_EVENT_FILE, 'utf8')), { awsRequestId: 'bench-cold-start' });
  answer = { status: response.statusCode, body: JSON.parse(response.body) };
} else {
  const ort = createRequire(import.meta.url)('onnxruntime-node');
  // The options the handler gives onnxruntime, as the bench read them from the handler's module,
  // so that only the handler's own work differs.
  const options = JSON.parse(process.env.BENCH_SESSION_OPTIONS);
  const session = await ort.InferenceSession.create(process.env.BENCH_MODEL_PATH, options.session);
  ready = since();
  const input = JSON.parse(readFileSync(process.env.BENCH_INPUT_FILE, 'utf8'));
  const out = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) }, options.run);
  const [name] = session.outputNames;
  answer = { status: 200, body: { outputs: [{ name, data: Array.from(out[name].data) }] } };
}
const answered = since();
// Resident memory once the first answer is out: anonymous (the heap, onnxruntime's copies of the
// weights) and file-backed (mapped code and models), from the kernel's own count.
const status = readFileSync('/proc/self/status', 'utf8');
const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
const memory = { rssAnon: kb('RssAnon'), rssFile: kb('RssFile'), maxRss: process.resourceUsage().maxRSS * 1024 };
// Exits once the line is flushed: a pipe takes 64 KiB at a time, and a large model's answer is longer.
process.stdout.write(`BENCH_RESULT ${JSON.stringify({ started, ready, answered, answer, memory })}\n`, () => process.exit(0));
