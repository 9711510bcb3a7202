// One server process for the throughput benchmark, on a free port of 127.0.0.1:
// BENCH_SERVER=handler serves the Lambda bundle through the library's local server (`serve`);
// BENCH_SERVER=bare is a minimal node:http server calling session.run on the same body.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';

let server;
if (process.env.BENCH_SERVER === 'handler') {
  // The bundle takes MODEL_PATH and the rest from process.env, as on Lambda.
  const { handler } = await import(new URL('../../assets/handlers/inference/index.mjs', import.meta.url).href);
  const local = await import(new URL('../../dist/lib/local/inference-server.js', import.meta.url).href);
  const startInferenceServer = local.startInferenceServer ?? local.default.startInferenceServer;
  server = await startInferenceServer({ handler, port: 0 });
} else {
  const ort = createRequire(import.meta.url)('onnxruntime-node');
  // The handler's own session and run options, as the bench read them from the handler's module.
  const options = JSON.parse(process.env.BENCH_SESSION_OPTIONS);
  const session = await ort.InferenceSession.create(process.env.MODEL_PATH, options.session);
  const http = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const feeds = Object.fromEntries(request.inputs.map((i) => [i.name, new ort.Tensor('float32', Float32Array.from(i.data), i.shape)]));
        const out = await session.run(feeds, options.run);
        const outputs = Object.entries(out).map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, data: Array.from(t.data) }));
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ outputs }));
      } catch (e) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: String(e) }));
      }
    });
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  server = { port: http.address().port };
}
process.stdout.write(`BENCH_RESULT ${JSON.stringify({ port: server.port })}\n`);
process.on('SIGTERM', () => process.exit(0));
