import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { checkReadiness, type LambdaHandler } from './inference-server';
import { lambdaRuntimeUrl } from './load-handler';

/**
 * What runs in each worker thread: it imports the handler's entry file, which runs the handler's
 * init there (its own onnxruntime session, its own copy of the model), then calls the handler for
 * every event the main thread sends, several at a time (the handler is async). Kept as source text,
 * not a file of its own, so that it runs the same from the compiled package and from TypeScript.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const describe = (e) => (e instanceof Error ? { message: e.message, stack: e.stack } : { message: String(e) });
(async () => {
  let handler;
  try {
    // Lambda's streaming runtime, as serve stands in for it: a streaming handler answers once its stream ends.
    const runtime = await import(workerData.runtimeUrl);
    runtime.installLambdaRuntime();
    const loaded = (await import(workerData.url)).handler;
    handler = typeof loaded === 'function' ? runtime.bufferedHandler(loaded) : loaded;
  } catch (e) {
    parentPort.postMessage({ type: 'failed', reason: describe(e).message });
    return;
  }
  if (typeof handler !== 'function') {
    parentPort.postMessage({ type: 'failed', reason: workerData.file + " does not export a function named 'handler'" });
    return;
  }
  parentPort.on('message', ({ id, event, context }) => {
    Promise.resolve()
      .then(() => handler(event, context))
      .then(
        (result) => {
          try {
            parentPort.postMessage({ type: 'result', id, result });
          } catch (e) {
            parentPort.postMessage({ type: 'error', id, error: describe(e) });
          }
        },
        (e) => parentPort.postMessage({ type: 'error', id, error: describe(e) }),
      );
  });
  parentPort.postMessage({ type: 'loaded' });
})();
`;

type FromWorker =
  | { type: 'loaded' }
  | { type: 'failed'; reason: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: { message: string; stack?: string } };

export interface HandlerWorkersOptions {
  /** How many worker threads, each with its own init. */
  readonly workers: number;
  /** The handler's entry file: an ES module that exports `handler`. */
  readonly file: string;
  /**
   * Called once if a worker stops after every worker was ready (an uncaught error in it, or the
   * handler ending its thread): its requests in flight have failed, and the pool serves no more.
   */
  readonly onWorkerStopped?: (error: Error) => void;
}

export interface HandlerWorkers {
  /** Sends each event to the worker with the fewest requests in flight. */
  readonly handler: LambdaHandler;
  /** Terminates every worker; requests in flight fail. */
  close(): Promise<void>;
}

/** A worker that could not load the handler or its model; `worker` counts from 1. */
export class WorkerLoadError extends Error {
  constructor(
    public readonly worker: number,
    public readonly reason: string,
  ) {
    super(reason);
    this.name = 'WorkerLoadError';
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface HandlerWorker {
  readonly number: number;
  readonly thread: Worker;
  readonly pending: Map<number, Pending>;
}

/**
 * Runs a Lambda handler the way the Node.js runtime of Lambda Managed Instances does: `workers`
 * worker threads, each importing the handler's entry file and running its own init, each taking
 * several requests at a time. Resolves once every worker has loaded its model (the handler answers
 * its readiness check); the first worker that cannot makes it reject with a WorkerLoadError, after
 * every worker is terminated.
 */
export async function startHandlerWorkers(options: HandlerWorkersOptions): Promise<HandlerWorkers> {
  const url = pathToFileURL(options.file).href;
  let nextId = 0;
  let serving = false;
  let closing = false;
  let stopped = false;
  const workers: HandlerWorker[] = [];

  const invoke = (worker: HandlerWorker, event: unknown, context: { awsRequestId: string }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      worker.pending.set(id, { resolve, reject });
      try {
        worker.thread.postMessage({ id, event, context });
      } catch (e) {
        worker.pending.delete(id);
        reject(e as Error);
      }
    });

  const stop = (worker: HandlerWorker, cause: string) => {
    const error = new Error(`worker ${worker.number} of ${options.workers} stopped: ${cause}`);
    for (const p of worker.pending.values()) p.reject(error);
    worker.pending.clear();
    if (serving && !closing && !stopped) {
      stopped = true;
      // Once the requests that failed have had their answers sent.
      setImmediate(() => options.onWorkerStopped?.(error));
    }
  };

  const close = async () => {
    closing = true;
    await Promise.all(workers.map((w) => w.thread.terminate()));
  };

  // Every worker starts at once, as the runtime starts them; each reports once it has loaded.
  const loads = Array.from({ length: options.workers }, (_, i) => {
    const worker: HandlerWorker = {
      number: i + 1,
      thread: new Worker(WORKER_SOURCE, { eval: true, workerData: { url, file: options.file, runtimeUrl: lambdaRuntimeUrl() } }),
      pending: new Map(),
    };
    workers.push(worker);
    return new Promise<void>((resolve, reject) => {
      let loaded = false;
      worker.thread.on('message', (m: FromWorker) => {
        if (m.type === 'loaded') {
          loaded = true;
          resolve();
        } else if (m.type === 'failed') {
          reject(new WorkerLoadError(worker.number, m.reason));
        } else {
          const p = worker.pending.get(m.id);
          worker.pending.delete(m.id);
          if (m.type === 'result') {
            p?.resolve(m.result);
          } else {
            const error = new Error(m.error.message);
            if (m.error.stack) error.stack = m.error.stack;
            p?.reject(error);
          }
        }
      });
      worker.thread.on('error', (e) => {
        if (!loaded) reject(new WorkerLoadError(worker.number, e.message));
        else stop(worker, e.stack ?? e.message);
      });
      worker.thread.on('exit', (code) => {
        if (!loaded) reject(new WorkerLoadError(worker.number, `the worker ended (exit code ${code}) before it loaded the handler`));
        else stop(worker, `the thread ended with exit code ${code}`);
      });
    }).then(async () => {
      const readiness = await checkReadiness((event, context) => invoke(worker, event, context));
      if (!readiness.ready) throw new WorkerLoadError(worker.number, readiness.reason ?? 'not ready');
    });
  });
  try {
    await Promise.all(loads);
  } catch (e) {
    await close();
    throw e;
  }
  serving = true;

  // Least requests in flight first; among equals, the one after the last chosen.
  let last = -1;
  const pick = (): HandlerWorker => {
    let best: HandlerWorker | undefined;
    for (let k = 1; k <= workers.length; k++) {
      const w = workers[(last + k) % workers.length];
      if (!best || w.pending.size < best.pending.size) best = w;
    }
    last = workers.indexOf(best!);
    return best!;
  };

  return {
    handler: (event, context) => (stopped ? Promise.reject(new Error('a worker stopped: serve is shutting down')) : invoke(pick(), event, context)),
    close,
  };
}
