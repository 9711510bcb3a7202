import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BATCH_MAX_QUEUE_DELAY_MS, DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { modelFingerprint } from '../model/local-model';
import { modelVersionFromIdentity } from '../private/model-version';
import { HOOKS_MODULE_FILE } from '../../contract/hooks';
import { WARMER_SOURCE } from '../../contract/warmup';
import { bundleHooks, type HooksBundle, HooksBuildError, hooksOf, writeHooksBundle } from '../hooks/hooks-bundle';
import { inferenceHandlerDir, PACKAGE_ROOT } from '../private/package-paths';
import { limitConcurrency } from './concurrency-limit';
import { type HandlerWorkers, startHandlerWorkers, WorkerLoadError } from './handler-workers';
import { checkReadiness, type LambdaHandler, type RunningInferenceServer, startInferenceServer } from './inference-server';
import { inferenceHandlerFile, loadInferenceHandler } from './load-handler';
import { batchCommand } from './batch-command';

/**
 * Requests per worker an environment takes at a time when --concurrency is not given: the default
 * of an endpoint's `maxConcurrencyPerEnvironment` on Managed Instances (4 per worker).
 */
export const DEFAULT_CONCURRENCY_PER_WORKER = 4;

/** Requests that wait for a free slot when --queue is not given. */
export const DEFAULT_QUEUE = 100;

/** The handler's log level when neither --log-level nor POWERTOOLS_LOG_LEVEL is given: a hook's logger.info shows. */
export const DEFAULT_LOG_LEVEL = 'INFO';

/** The levels of the handler's logger (Powertools for AWS Lambda). */
const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'];

/** What serve does once the model failed to load, where a deployed function would try again. */
const NO_RETRY =
  "serve stops: it loads the model once, before it listens, and does not retry (the retries the handler's log speaks of are a deployed function's); fix the cause and start it again";

const USAGE = `Usage: cdk-serverless-inference serve --model ./model.onnx [--port 8080] [--name model] [--host 127.0.0.1] [--hooks FILE] [--mount PATH=DIR]
                                       [--data-capture DIR] [--shadow-model PATH]
                                       [--workers N] [--concurrency C] [--queue Q] [--batch-size B] [--batch-delay MS]
                                       [--log-level INFO]
       cdk-serverless-inference serve --model-repository DIR [--memory-budget MIB] [--disk-budget MIB] [--warm-models a,b] [...]
       cdk-serverless-inference batch --model ./model.onnx --input rows.jsonl --output ./out   (batch --help)
       cdk-serverless-inference --version

Serves the library's inference handler over HTTP on this machine, so a model can be tried before
any deploy. Each request reaches the handler as an API Gateway (REST proxy) event. The model is
loaded once, before the server listens: a model that cannot be loaded ends the command with its
cause (serve does not retry it, as a deployed function would).

Options:
  --model PATH     the .onnx file (or set MODEL_S3_URI and the AWS variables to fetch it from S3)
  --name NAME      the model's name in the routes (default: model)
  --model-repository DIR
                   serve every model of a repository instead (DIR/<name>/<version>/model.onnx, as
                   Triton lays it out; or set ${ENV.MODEL_REPOSITORY_S3_URI}): each model loads on
                   its first request, and the least recently used are unloaded under the budget.
                   A model added to DIR is served at its first request, with no restart
  --memory-budget MIB
                   the repository's memory budget for loaded models, in MiB (default: a quarter of
                   this machine's memory; deployed, from the function's memory)
  --disk-budget MIB
                   the repository's budget for model files fetched from S3, in MiB (default: 90 % of
                   the cache directory's file system)
  --warm-models LIST
                   models of the repository (name or name:version, comma-separated) loaded before the
                   server listens, and unloaded last
  --model-version V
                   the version the model reports and accepts in /versions/V/ routes (default: as
                   deployed, the first 16 hex digits of a local model file's content hash, else 1)
  --port N         the port (default: 8080; 0 picks a free one)
  --host HOST      the address to listen on (default: 127.0.0.1); the server has no authorization,
                   so another address lets anyone who can reach it on the network call the model
  --hooks FILE     a hooks entry (TypeScript or JavaScript) whose named exports preprocess, postprocess
                   and afterResponse are the hooks: bundled as an endpoint's \`hooks\` prop bundles it, and
                   served streaming, as deployed with response streaming (afterResponse runs once the
                   client has the whole answer)
  --handler FILE   a bundled entry file of your own instead of the library's handler
  --data-capture DIR
                   write a capture record of every infer request and its answer (SageMaker Data
                   Capture's JSON Lines, as an endpoint's \`dataCapture\` writes them to S3) to
                   DIR/yyyy/mm/dd/hh/*.jsonl once the answer is sent; ${ENV.DATA_CAPTURE_SAMPLING_PERCENT}
                   and ${ENV.DATA_CAPTURE_MODE} apply when set. Served streaming, as deployed
  --shadow-model PATH
                   a candidate .onnx file run on every infer request once the answer is sent, as an
                   endpoint's \`shadow\` runs it: its answer is compared with the live one
                   (${ENV.SHADOW_AGREEMENT}, ${ENV.SHADOW_TOLERANCE}) and recorded beside it with --data-capture
  --mount PATH=DIR a local folder standing in for a path of the function, as an endpoint sets
                   ${ENV.MODEL_PATH}: --model /opt/models/m.onnx --mount /opt=./layer (a model layer),
                   --mount /mnt/models=./efs (the EFS mount), --mount /var/task=./code (bundled)
  --workers N      run the handler as Lambda Managed Instances' Node.js runtime does: N worker threads,
                   each with its own init (its own onnxruntime session and copy of the model), each
                   taking several requests at a time; the server waits until every worker has
                   loaded the model. Each worker gets ${ENV.ORT_INTRA_OP_THREADS} = the CPUs / N (at least 1)
                   unless it is set. Without --workers, --concurrency and --queue, the handler runs in
                   the server's own thread, with no limit on requests in flight
  --concurrency C  requests in flight at a time, over all workers, as an endpoint's
                   maxConcurrencyPerEnvironment (default: ${DEFAULT_CONCURRENCY_PER_WORKER} per worker, as deployed; at least N)
  --queue Q        requests that wait, in order, while C are in flight (default: ${DEFAULT_QUEUE}); more are
                   answered 503 with Retry-After at once (Lambda would send them to another
                   environment, or throttle them while it scales)
  --batch-size B   dynamic batching, as an endpoint's \`batching\` prop sets it (${ENV.BATCH_MAX_SIZE}): the requests
                   a worker has that agree on all but the model's batch dimension run as one
                   session.run of up to B rows, each answered with its own rows; one such run at a
                   time, those that arrive meanwhile forming the next. It needs several requests in
                   flight per worker: --concurrency defaults to B per worker with it (default: off)
  --batch-delay MS how long a request that finds the model idle waits for others
                   (${ENV.BATCH_MAX_QUEUE_DELAY_MS}; default: ${DEFAULT_BATCH_MAX_QUEUE_DELAY_MS})
  --log-level L    the handler's log level, which your hooks' context.logger shares: TRACE, DEBUG,
                   INFO, WARN, ERROR, CRITICAL or SILENT (default: INFO, or POWERTOOLS_LOG_LEVEL when
                   set). The handler logs JSON lines, as on Lambda: at INFO, the model's load, the
                   requests it refuses with a 4xx, and whatever your hooks log at INFO or above
  -h, --help       this text
  --version        the package's version`;

/** The serve command's options; throws on an unknown or malformed one. */
function parseServeOptions(args: string[]) {
  return parseArgs({
    args,
    options: {
      model: { type: 'string' },
      'model-repository': { type: 'string' },
      'memory-budget': { type: 'string' },
      'disk-budget': { type: 'string' },
      'warm-models': { type: 'string' },
      name: { type: 'string' },
      'model-version': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      handler: { type: 'string' },
      hooks: { type: 'string' },
      'data-capture': { type: 'string' },
      'shadow-model': { type: 'string' },
      mount: { type: 'string', multiple: true },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      queue: { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-delay': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

type ServeOptions = ReturnType<typeof parseServeOptions>;

/** Runs the command line; returns the process exit code, or undefined while the server runs. */
export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command === '--version') {
    console.log(packageVersion());
    return 0;
  }
  if (!command || command === '-h' || command === '--help') {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  if (command === 'batch') return batchCommand(rest);
  if (command !== 'serve') {
    console.error(`unknown command '${command}'\n\n${USAGE}`);
    return 1;
  }
  let args: ServeOptions;
  try {
    args = parseServeOptions(rest);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const port = args.port === undefined ? 8080 : Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be a port number (0-65535), got: ${args.port}`);
    return 1;
  }
  const mounts: Array<[string, string]> = [];
  for (const m of args.mount ?? []) {
    const [target, dir] = m.split('=', 2);
    if (!target || !dir || !path.posix.isAbsolute(target)) {
      console.error(`--mount must be PATH=DIR with an absolute PATH, got: ${m}`);
      return 1;
    }
    mounts.push([target.replace(/\/+$/, ''), path.resolve(dir)]);
  }
  if (args.hooks !== undefined && args.handler !== undefined) {
    console.error("give --hooks (bundled with the library's handler) or --handler (an entry of your own), not both");
    return 1;
  }
  const logLevel = args['log-level'] ?? process.env.POWERTOOLS_LOG_LEVEL ?? DEFAULT_LOG_LEVEL;
  if (!LOG_LEVELS.includes(logLevel.toUpperCase())) {
    console.error(`${args['log-level'] !== undefined ? '--log-level' : 'POWERTOOLS_LOG_LEVEL'} must be one of ${LOG_LEVELS.join(', ')}, got: ${logLevel}`);
    return 1;
  }
  const batching = batchSettings(args);
  if (typeof batching === 'string') {
    console.error(batching);
    return 1;
  }
  const workerArgs = workerSettings(args, batching?.size);
  if (typeof workerArgs === 'string') {
    console.error(workerArgs);
    return 1;
  }
  const repository = repositorySettings(args);
  if (typeof repository === 'string') {
    console.error(repository);
    return 1;
  }
  const modelArg = repository ? undefined : (args.model ?? (mounts.length > 0 ? process.env[ENV.MODEL_PATH] : undefined));
  if (repository) {
    // Set above, from the flags and the environment.
  } else if (modelArg) {
    const mount = mounts.find(([target]) => modelArg.startsWith(`${target}/`));
    const model = mount ? path.join(mount[1], modelArg.slice(mount[0].length)) : path.resolve(modelArg);
    if (!fs.existsSync(model)) {
      console.error(`--model: ${model} does not exist${mount ? ` (${modelArg} through --mount ${mount[0]}=${mount[1]})` : ''}`);
      return 1;
    }
    process.env[ENV.MODEL_PATH] = model;
    delete process.env[ENV.MODEL_S3_URI];
  } else if (!process.env[ENV.MODEL_PATH] && !process.env[ENV.MODEL_S3_URI]) {
    console.error(`give --model PATH (or set ${ENV.MODEL_S3_URI})\n\n${USAGE}`);
    return 1;
  }
  if (args.name) process.env[ENV.MODEL_NAME] = args.name;
  if (args['model-version'] !== undefined) {
    if (!/^[^/]+$/.test(args['model-version'])) {
      console.error(`--model-version must be a route segment: not empty, no '/', got: '${args['model-version']}'`);
      return 1;
    }
    process.env[ENV.MODEL_VERSION] = args['model-version'];
  } else if (!process.env[ENV.MODEL_VERSION]) {
    const version = localModelVersion(process.env[ENV.MODEL_PATH]);
    if (version) process.env[ENV.MODEL_VERSION] = version;
  }
  // The handler's log, and the hooks' logger with it, at the level asked for (INFO by default, so a
  // hook's logger.info shows); its metrics are for CloudWatch.
  process.env.POWERTOOLS_LOG_LEVEL = logLevel.toUpperCase();
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  // The handler hands over at once, and the readiness check below waits for the whole load: on
  // Lambda the wait is capped to fit the init phase, here nothing is served before the model is loaded.
  process.env[ENV.MODEL_INIT_WAIT_MS] ??= '0';
  if (batching) {
    process.env[ENV.BATCH_MAX_SIZE] = String(batching.size);
    if (batching.delayMs !== undefined) process.env[ENV.BATCH_MAX_QUEUE_DELAY_MS] = String(batching.delayMs);
  }
  if (workerArgs) {
    // As an endpoint on Managed Instances sizes it: workers × threads within the CPUs.
    process.env[ENV.ORT_INTRA_OP_THREADS] ??= String(Math.max(1, Math.floor(os.availableParallelism() / workerArgs.workers)));
  }

  if (args['data-capture'] !== undefined) {
    process.env[ENV.DATA_CAPTURE_DIR] = path.resolve(args['data-capture']);
    process.env[ENV.RESPONSE_STREAMING] ??= '1';
    console.log(`Capturing requests and answers to ${process.env[ENV.DATA_CAPTURE_DIR]}/yyyy/mm/dd/hh/`);
  }
  if (args['shadow-model'] !== undefined) {
    const shadow = path.resolve(args['shadow-model']);
    if (!fs.existsSync(shadow)) {
      console.error(`--shadow-model: ${shadow} does not exist`);
      return 1;
    }
    process.env[ENV.SHADOW_MODEL_PATH] = shadow;
    delete process.env[ENV.SHADOW_MODEL_S3_URI];
    process.env[ENV.SHADOW_MODEL_VERSION] ??= localModelVersion(shadow) ?? 'shadow';
    process.env[ENV.RESPONSE_STREAMING] ??= '1';
  }

  let handlerFile = args.handler;
  if (args.hooks !== undefined) {
    const staged = stageHandlerWithHooks(args.hooks);
    if (typeof staged === 'string') {
      console.error(staged);
      return 1;
    }
    handlerFile = staged.file;
    console.log(`Hooks from ${path.resolve(args.hooks)}: ${staged.hooks.join(', ')}`);
  }

  const name = repository ? `repository ${repository.serves}` : process.env[ENV.MODEL_NAME] || DEFAULT_MODEL_NAME;
  const version = process.env[ENV.MODEL_VERSION] || DEFAULT_MODEL_VERSION;
  console.log(
    repository
      ? `Serving the model ${name}: each model loads on its first request`
      : `Loading model '${name}'${workerArgs ? ` in ${plural(workerArgs.workers, 'worker')}` : ''}...`,
  );
  let handler: LambdaHandler;
  let workers: HandlerWorkers | undefined;
  let server: RunningInferenceServer | undefined;
  if (workerArgs) {
    try {
      workers = await startHandlerWorkers({
        workers: workerArgs.workers,
        file: inferenceHandlerFile(handlerFile),
        onWorkerStopped: (error) => {
          // Lambda replaces an execution environment whose runtime fails; here, serve ends.
          console.error(`${error.message}\nserve stops: a worker that ended takes its model and its requests with it`);
          void Promise.allSettled([server?.close(), workers?.close()]).then(() => process.exit(1));
        },
      });
    } catch (e) {
      if (!(e instanceof WorkerLoadError)) throw e;
      console.error(`cannot serve model '${name}' (worker ${e.worker} of ${workerArgs.workers}): ${withoutRetry(e.reason)}\n${NO_RETRY}`);
      return 1;
    }
    handler = limitConcurrency(workers.handler, { maxConcurrency: workerArgs.concurrency, maxQueue: workerArgs.queue });
  } else {
    handler = await loadInferenceHandler(handlerFile);
    const readiness = repository ? await warmRepository(handler) : await checkReadiness(handler);
    if (!readiness.ready) {
      console.error(`cannot serve model '${name}': ${withoutRetry(readiness.reason ?? 'not ready')}\n${NO_RETRY}`);
      return 1;
    }
  }
  try {
    server = await startInferenceServer({ handler, port, host: args.host });
  } catch (e) {
    await workers?.close();
    throw e;
  }
  if (!server.loopbackOnly) {
    console.error(
      `WARNING: listening on ${server.address}, which is reachable from the network, with no authorization: anyone who can reach this machine on port ${server.port} can call the model. --host 127.0.0.1 (the default) serves this machine only.`,
    );
  }
  if (repository) {
    console.log(`Serving the model ${name} at ${server.url}`);
    console.log(`  curl -s -X POST ${server.url}/v2/repository/index`);
    console.log(`  curl -s -X POST ${server.url}/v2/models/{name}/infer -H 'Content-Type: application/json' -d '{"inputs": [...]}'`);
  } else {
    // One write: whoever waits for the URL gets the workers' line with it.
    console.log(
      `Serving model '${name}' (version ${version}) at ${server.url}` +
        (workerArgs
          ? `\n  ${plural(workerArgs.workers, 'worker thread')}, each with its own copy of the model and ${plural(Number(process.env[ENV.ORT_INTRA_OP_THREADS]), 'onnxruntime thread')}; ` +
            `at most ${plural(workerArgs.concurrency, 'request')} in flight, ${workerArgs.queue} more waiting`
          : '') +
        (batching
          ? `\n  dynamic batching: up to ${plural(batching.size, 'row')} per run, waiting up to ${process.env[ENV.BATCH_MAX_QUEUE_DELAY_MS] ?? DEFAULT_BATCH_MAX_QUEUE_DELAY_MS} ms`
          : '') +
        variantsLine(),
    );
    console.log(`  curl -s ${server.url}/v2/models/${name}`);
    console.log(`  curl -s -X POST ${server.url}/v2/models/${name}/infer -H 'Content-Type: application/json' -d '{"inputs": [...]}'`);
  }
  const stop = () => {
    void Promise.allSettled([server?.close(), workers?.close()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return undefined;
}

/**
 * The library's handler with a hooks entry bundled beside it, in a temporary folder removed when the
 * process exits, set up as an endpoint with hooks and response streaming runs it; or a message
 * saying why the entry cannot be served.
 */
function stageHandlerWithHooks(entry: string): { file: string; hooks: readonly string[] } | string {
  let bundle: HooksBundle;
  let hooks: string[];
  try {
    bundle = bundleHooks({ entry });
    hooks = hooksOf(bundle, entry);
  } catch (e) {
    if (e instanceof HooksBuildError) return `--hooks: ${e.message}`;
    throw e;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-serverless-inference-hooks-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(inferenceHandlerDir(), dir, { recursive: true });
  writeHooksBundle(bundle, dir);
  // The handler finds onnxruntime-node from its own folder, as from the package's: a link to the one installed.
  const onnxRuntime = resolvePackageDir('onnxruntime-node', [PACKAGE_ROOT, process.cwd()]);
  if (onnxRuntime) {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(onnxRuntime, path.join(dir, 'node_modules', 'onnxruntime-node'), 'dir');
  }
  process.env[ENV.HOOKS_MODULE] = HOOKS_MODULE_FILE;
  process.env[ENV.RESPONSE_STREAMING] ??= '1';
  // As NODE_OPTIONS=--enable-source-maps does on the function: a hook's stack names its own source lines.
  process.setSourceMapsEnabled(true);
  return { file: path.join(dir, 'index.mjs'), hooks };
}

/** The folder of an installed package, as Node.js resolves it from `paths`; undefined when it is not installed. */
function resolvePackageDir(name: string, paths: string[]): string | undefined {
  try {
    return path.dirname(require.resolve(`${name}/package.json`, { paths }));
  } catch {
    return undefined;
  }
}

/**
 * The handler's answer on a model it cannot load, without when it would try again (in N s, or on
 * the next request): true of a deployed function, not of serve, which ends instead.
 */
function withoutRetry(reason: string): string {
  return reason.replace(/; (?:the next attempt to load it is in \d+ s|the next request retries the load)\b/, '');
}

/** This package's version, from its package.json. */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The version an endpoint reports for this model file when none is given (InferenceFunction's
 * default): the first 16 hex digits of its content hash, as the constructs compute it at synth.
 */
function localModelVersion(modelPath: string | undefined): string | undefined {
  if (!modelPath || !fs.existsSync(modelPath) || !fs.statSync(modelPath).isFile()) return undefined;
  return modelVersionFromIdentity(modelFingerprint(modelPath));
}

/**
 * Sets the environment of a model repository from --model-repository and the budget flags (or
 * MODEL_REPOSITORY_S3_URI); what it serves, for the log; undefined when no repository is asked for;
 * a message when a flag is wrong.
 */
export function repositorySettings(args: {
  model?: string;
  'model-repository'?: string;
  'memory-budget'?: string;
  'disk-budget'?: string;
  'warm-models'?: string;
}): { readonly serves: string } | string | undefined {
  const dir = args['model-repository'];
  const s3 = process.env[ENV.MODEL_REPOSITORY_S3_URI];
  const flags = (['memory-budget', 'disk-budget', 'warm-models'] as const).filter((f) => args[f] !== undefined);
  if (dir === undefined && !s3) {
    return flags.length > 0 ? `--${flags[0]} is for a model repository: give --model-repository DIR (or set ${ENV.MODEL_REPOSITORY_S3_URI})` : undefined;
  }
  if (args.model !== undefined) return 'give --model (one model) or --model-repository (many), not both';
  for (const [flag, variable] of [
    ['memory-budget', ENV.MODEL_CACHE_MEMORY_MB],
    ['disk-budget', ENV.MODEL_CACHE_DISK_MB],
  ] as const) {
    const value = args[flag];
    if (value === undefined) continue;
    if (!/^\d+$/.test(value) || Number(value) < 1) return `--${flag} must be a whole number of MiB, at least 1, got: ${value}`;
    process.env[variable] = value;
  }
  if (args['warm-models'] !== undefined) process.env[ENV.MODEL_REPOSITORY_WARM_MODELS] = args['warm-models'];
  delete process.env[ENV.MODEL_PATH];
  delete process.env[ENV.MODEL_S3_URI];
  if (dir !== undefined) {
    const root = path.resolve(dir);
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) return `--model-repository: ${root} is not a directory`;
    process.env[ENV.MODEL_REPOSITORY_PATH] = root;
    delete process.env[ENV.MODEL_REPOSITORY_S3_URI];
    return { serves: root };
  }
  return { serves: s3! };
}

/** A repository's warm models, loaded by a warm-up before the server listens; the reason when one cannot be. */
async function warmRepository(handler: LambdaHandler): Promise<{ ready: boolean; reason?: string }> {
  const answer = (await handler({ source: WARMER_SOURCE, holdMs: 0 }, { awsRequestId: 'serve-warm-up' })) as { warmed?: boolean; error?: string };
  return answer?.warmed ? { ready: true } : { ready: false, reason: answer?.error ?? 'the warm models cannot be loaded' };
}

/**
 * Dynamic batching from --batch-size (or BATCH_MAX_SIZE) and --batch-delay; undefined when off (no
 * size, or 1), a message when one is wrong.
 */
export function batchSettings(args: { 'batch-size'?: string; 'batch-delay'?: string }): { size: number; delayMs?: number } | undefined | string {
  const raw = args['batch-size'] ?? (process.env[ENV.BATCH_MAX_SIZE] || undefined);
  const flag = args['batch-size'] !== undefined ? '--batch-size' : ENV.BATCH_MAX_SIZE;
  if (raw === undefined) {
    return args['batch-delay'] !== undefined ? '--batch-delay needs --batch-size: the batcher is off without it' : undefined;
  }
  if (!/^\d+$/.test(raw) || Number(raw) < 1) return `${flag} must be a whole number of at least 1, got: ${raw}`;
  const delay = args['batch-delay'];
  if (delay !== undefined && !/^\d+$/.test(delay)) return `--batch-delay must be a whole number of milliseconds, got: ${delay}`;
  if (Number(raw) < 2) return undefined;
  return { size: Number(raw), ...(delay !== undefined ? { delayMs: Number(delay) } : {}) };
}

/**
 * How many workers, requests in flight and waiting requests; undefined without any of the three
 * flags, a message when one is wrong. With batches of `batchSize` rows, a worker takes that many
 * requests at a time by default, so that a batch can fill.
 */
export function workerSettings(
  args: { workers?: string; concurrency?: string; queue?: string },
  batchSize?: number,
): { workers: number; concurrency: number; queue: number } | undefined | string {
  if (args.workers === undefined && args.concurrency === undefined && args.queue === undefined) return undefined;
  const count = (flag: string, value: string | undefined, fallback: number, min: number): number | string => {
    if (value === undefined) return fallback;
    const n = Number(value);
    return /^\d+$/.test(value) && n >= min ? n : `--${flag} must be a whole number of at least ${min}, got: ${value}`;
  };
  const workers = count('workers', args.workers, 1, 1);
  if (typeof workers === 'string') return workers;
  const concurrency = count('concurrency', args.concurrency, workers * Math.max(DEFAULT_CONCURRENCY_PER_WORKER, batchSize ?? 0), 1);
  if (typeof concurrency === 'string') return concurrency;
  if (concurrency < workers) {
    return `--concurrency must be at least the ${workers} workers (fewer would leave a worker idle), got: ${concurrency}`;
  }
  const queue = count('queue', args.queue, DEFAULT_QUEUE, 0);
  if (typeof queue === 'string') return queue;
  return { workers, concurrency, queue };
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** The A/B variants `serve` serves (MODEL_VARIANTS, which the handler has read and checked), as a line under the URL. */
function variantsLine(): string {
  const raw = process.env[ENV.MODEL_VARIANTS];
  if (!raw) return '';
  const variants = JSON.parse(raw) as Array<{ name: string; weight: number }>;
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  const header = process.env[ENV.MODEL_VARIANT_HEADER];
  return `\n  variants: ${variants.map((v) => `${v.name} ${Math.round((1000 * v.weight) / total) / 10} %`).join(', ')}, ${header ? `sticky by ${header}` : 'drawn at random per request'}`;
}
