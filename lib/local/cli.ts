import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { modelFingerprint } from '../model/local-model';
import { modelVersionFromIdentity } from '../private/model-version';
import { HOOKS_MODULE_FILE } from '../../contract/hooks';
import { bundleHooks, type HooksBundle, HooksBuildError, hooksOf, writeHooksBundle } from '../hooks/hooks-bundle';
import { inferenceHandlerDir, PACKAGE_ROOT } from '../private/package-paths';
import { limitConcurrency } from './concurrency-limit';
import { type HandlerWorkers, startHandlerWorkers, WorkerLoadError } from './handler-workers';
import { checkReadiness, type LambdaHandler, type RunningInferenceServer, startInferenceServer } from './inference-server';
import { inferenceHandlerFile, loadInferenceHandler } from './load-handler';

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
                                       [--workers N] [--concurrency C] [--queue Q] [--log-level INFO]
       cdk-serverless-inference --version

Serves the library's inference handler over HTTP on this machine, so a model can be tried before
any deploy. Each request reaches the handler as an API Gateway (REST proxy) event. The model is
loaded once, before the server listens: a model that cannot be loaded ends the command with its
cause (serve does not retry it, as a deployed function would).

Options:
  --model PATH     the .onnx file (or set MODEL_S3_URI and the AWS variables to fetch it from S3)
  --name NAME      the model's name in the routes (default: model)
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
      name: { type: 'string' },
      'model-version': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      handler: { type: 'string' },
      hooks: { type: 'string' },
      mount: { type: 'string', multiple: true },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      queue: { type: 'string' },
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
  const workerArgs = workerSettings(args);
  if (typeof workerArgs === 'string') {
    console.error(workerArgs);
    return 1;
  }
  const modelArg = args.model ?? (mounts.length > 0 ? process.env[ENV.MODEL_PATH] : undefined);
  if (modelArg) {
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
  if (workerArgs) {
    // As an endpoint on Managed Instances sizes it: workers × threads within the CPUs.
    process.env[ENV.ORT_INTRA_OP_THREADS] ??= String(Math.max(1, Math.floor(os.availableParallelism() / workerArgs.workers)));
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

  const name = process.env[ENV.MODEL_NAME] || DEFAULT_MODEL_NAME;
  const version = process.env[ENV.MODEL_VERSION] || DEFAULT_MODEL_VERSION;
  console.log(`Loading model '${name}'${workerArgs ? ` in ${plural(workerArgs.workers, 'worker')}` : ''}...`);
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
    const readiness = await checkReadiness(handler);
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
  // One write: whoever waits for the URL gets the workers' line with it.
  console.log(
    `Serving model '${name}' (version ${version}) at ${server.url}` +
      (workerArgs
        ? `\n  ${plural(workerArgs.workers, 'worker thread')}, each with its own copy of the model and ${plural(Number(process.env[ENV.ORT_INTRA_OP_THREADS]), 'onnxruntime thread')}; ` +
          `at most ${plural(workerArgs.concurrency, 'request')} in flight, ${workerArgs.queue} more waiting`
        : '') +
      variantsLine(),
  );
  console.log(`  curl -s ${server.url}/v2/models/${name}`);
  console.log(`  curl -s -X POST ${server.url}/v2/models/${name}/infer -H 'Content-Type: application/json' -d '{"inputs": [...]}'`);
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

/** How many workers, requests in flight and waiting requests; undefined without any of the three flags, a message when one is wrong. */
export function workerSettings(args: { workers?: string; concurrency?: string; queue?: string }): { workers: number; concurrency: number; queue: number } | undefined | string {
  if (args.workers === undefined && args.concurrency === undefined && args.queue === undefined) return undefined;
  const count = (flag: string, value: string | undefined, fallback: number, min: number): number | string => {
    if (value === undefined) return fallback;
    const n = Number(value);
    return /^\d+$/.test(value) && n >= min ? n : `--${flag} must be a whole number of at least ${min}, got: ${value}`;
  };
  const workers = count('workers', args.workers, 1, 1);
  if (typeof workers === 'string') return workers;
  const concurrency = count('concurrency', args.concurrency, workers * DEFAULT_CONCURRENCY_PER_WORKER, 1);
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
