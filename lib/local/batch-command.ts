import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BATCH_FILES, BATCH_KIND, type BatchAnswer, type BatchManifest } from '../../contract/batch';
import { ENV } from '../../contract/environment';
import type { LambdaHandler } from './inference-server';
import { loadInferenceHandler } from './load-handler';

export const BATCH_USAGE = `Usage: cdk-serverless-inference batch --model ./model.onnx --input rows.jsonl --output ./out [--name model]
                                       [--format jsonl|csv] [--items-per-batch 500] [--join-input]

Scores a local JSON Lines or CSV file with the library's inference handler, as a BatchInference
state machine does once deployed: the same batches (each one event of the Distributed Map's shape,
rows of the same shape in one session.run), and the same output in the output folder:
${BATCH_FILES.RESULTS} (one line per input line, in order), ${BATCH_FILES.FAILURES} (each failed line with
its reason) and ${BATCH_FILES.MANIFEST}. A progress bar on stderr shows rows per second and the time left.

Options:
  --model PATH          the .onnx file
  --input FILE          the input: JSON Lines (a request, a row, or an object of input name to row
                        per line) or CSV with a header row
  --output DIR          where the output goes (created; its files are replaced)
  --name NAME           the model's name (default: model)
  --format F            jsonl or csv (default: from the input's extension, else jsonl)
  --items-per-batch N   items per batch, as the construct's itemsPerBatch (default: 500)
  --join-input          each output line carries its input line (Batch Transform's JoinSource)
  -h, --help            this text`;

/** A CSV line's fields: commas split them, double quotes enclose a field with commas or quotes (`""` is a quote). */
export function csvFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

/**
 * The items of an input file, as the Distributed Map's item readers give them: each JSON line
 * parsed (a line that is not JSON is kept as an error), each CSV row an object of header to text.
 */
export function readBatchItems(text: string, format: 'jsonl' | 'csv'): Array<{ value?: unknown; error?: string }> {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  if (format === 'csv') {
    const header = csvFields(lines.shift() ?? '');
    return lines.map((line) => ({ value: Object.fromEntries(csvFields(line).map((v, k) => [header[k] ?? `column${k + 1}`, v])) }));
  }
  return lines.map((line) => {
    try {
      return { value: JSON.parse(line) as unknown };
    } catch (e) {
      return { error: `the line is not JSON: ${(e as Error).message}` };
    }
  });
}

/** The progress line: done of total, rows per second, time left. */
export function progressLine(done: number, total: number, seconds: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const rate = seconds > 0 ? done / seconds : 0;
  const left = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} rows  ${Math.round(rate).toLocaleString('en-US')} rows/s  ${left === undefined ? '' : `${left} s left`}`;
}

/** Runs `batch`; returns the exit code: 0 when every line was scored, 2 when some failed, 1 on a usage error. */
export async function batchCommand(argv: string[], loadHandler: () => Promise<LambdaHandler> = () => loadInferenceHandler()): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${BATCH_USAGE}`);
    return 1;
  }
  if (args.help) {
    console.log(BATCH_USAGE);
    return 0;
  }
  if (!args.model || !args.input || !args.output) {
    console.error(`give --model, --input and --output\n\n${BATCH_USAGE}`);
    return 1;
  }
  for (const [flag, file] of [
    ['--model', args.model],
    ['--input', args.input],
  ]) {
    if (!fs.existsSync(file)) {
      console.error(`${flag}: ${path.resolve(file)} does not exist`);
      return 1;
    }
  }
  const format = args.format ?? (args.input.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl');
  if (format !== 'jsonl' && format !== 'csv') {
    console.error(`--format must be jsonl or csv, got: ${format}`);
    return 1;
  }
  const perBatch = args['items-per-batch'] === undefined ? 500 : Number(args['items-per-batch']);
  if (!Number.isInteger(perBatch) || perBatch < 1) {
    console.error(`--items-per-batch must be a whole number of at least 1, got: ${args['items-per-batch']}`);
    return 1;
  }
  process.env[ENV.MODEL_PATH] = path.resolve(args.model);
  delete process.env[ENV.MODEL_S3_URI];
  if (args.name) process.env[ENV.MODEL_NAME] = args.name;
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env[ENV.MODEL_INIT_WAIT_MS] ??= '0';

  const handler = await loadHandler();
  const items = readBatchItems(fs.readFileSync(args.input, 'utf8'), format);
  const results: string[] = new Array(items.length);
  const failures: string[] = [];
  const startedAt = new Date();
  const started = performance.now();
  const tty = process.stderr.isTTY;
  let lastDraw = 0;
  const draw = (done: number, force = false) => {
    const now = performance.now();
    if (!force && now - lastDraw < 200) return;
    lastDraw = now;
    const line = progressLine(done, items.length, (now - started) / 1000);
    process.stderr.write(tty ? `\r${line}` : `${line}\n`);
  };
  for (let first = 0; first < items.length; first += perBatch) {
    const batch = items.slice(first, first + perBatch).map((item, k) => ({ index: first + k, ...item }));
    for (const item of batch.filter((i) => i.error !== undefined)) results[item.index] = JSON.stringify({ index: item.index, status: 400, error: item.error });
    const runnable = batch.filter((i) => i.error === undefined);
    const event = { BatchInput: { kind: BATCH_KIND, ...(args['join-input'] ? { joinInput: true } : {}) }, Items: runnable.map((i) => ({ index: i.index, value: i.value })) };
    try {
      const answer = (await handler(event, { awsRequestId: `batch-${first}` })) as BatchAnswer;
      answer.lines!.forEach((line, k) => {
        results[runnable[k].index] = line;
      });
    } catch (e) {
      // A failure of the function itself: on Step Functions the batch would be retried, then counted
      // against the tolerated failures; here its items fail with the reason.
      const reason = `the batch's invocation failed: ${(e as Error).message}`;
      for (const i of runnable) results[i.index] = JSON.stringify({ index: i.index, status: 500, error: reason });
    }
    draw(Math.min(first + perBatch, items.length));
  }
  draw(items.length, true);
  if (tty) process.stderr.write('\n');
  for (const line of results) {
    const parsed = JSON.parse(line) as { index: number; id?: unknown; status?: unknown; error?: unknown };
    if (parsed.error !== undefined)
      failures.push(JSON.stringify({ index: parsed.index, ...(parsed.id !== undefined ? { id: parsed.id } : {}), status: parsed.status, error: parsed.error }));
  }
  const seconds = (performance.now() - started) / 1000;
  const out = path.resolve(args.output);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, BATCH_FILES.RESULTS), results.map((l) => `${l}\n`).join(''));
  fs.writeFileSync(path.join(out, BATCH_FILES.FAILURES), failures.map((l) => `${l}\n`).join(''));
  const manifest: BatchManifest = {
    input: { key: path.resolve(args.input) },
    output: { results: path.join(out, BATCH_FILES.RESULTS), failures: path.join(out, BATCH_FILES.FAILURES) },
    items: items.length,
    succeeded: items.length - failures.length,
    failed: failures.length,
    failedInBatches: 0,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    seconds,
  };
  fs.writeFileSync(path.join(out, BATCH_FILES.MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(
    `${items.length} rows in ${seconds.toFixed(1)} s (${Math.round(items.length / Math.max(seconds, 1e-9))} rows/s): ${manifest.succeeded} scored, ${failures.length} failed; output in ${out}`,
  );
  return failures.length > 0 ? 2 : 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
      name: { type: 'string' },
      format: { type: 'string' },
      'items-per-batch': { type: 'string' },
      'join-input': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}
