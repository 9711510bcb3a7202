/**
 * A function for the local Lambda stand-in (tools/local-lambda.ts) to invoke: a handler bundle run
 * as Lambda runs it, for tests that need the real handler's answers rather than made-up ones.
 *
 * Each execution environment is a Node.js process of its own (tools/lambda-environment.mjs) that
 * loads the bundle once (its init phase: the handler loads its model there) and answers one
 * invocation at a time; an invocation goes to an idle environment, or starts a new one (a cold
 * start), so N concurrent invocations reach N environments. An invocation that outlasts the
 * timeout ends its environment and is answered as Lambda answers it (`Sandbox.Timedout`).
 *
 * Lambda's Node.js runtimes are 22 and later; an environment started on an older Node.js gets the
 * V8 flag that turns on what those runtimes have by default (`JSON.rawJSON`), so that the runtime's
 * JSON.stringify of a result writes what it writes on Lambda.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { LambdaAnswer, LambdaInvocation } from './local-lambda';

const ENVIRONMENT = path.join(__dirname, 'lambda-environment.mjs');
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const NODE_FLAGS = NODE_MAJOR < 22 ? ['--harmony-json-parse-with-source'] : [];

export interface LocalFunctionOptions {
  /** The folder of the bundle (Lambda's task root), e.g. `assets/handlers/inference`. */
  readonly codeDir: string;
  /** `file.export`, with `file.mjs` in `codeDir`. @default 'index.handler' */
  readonly handler?: string;
  /** The function's environment variables. @default - none but Lambda's own */
  readonly environment?: Readonly<Record<string, string>>;
  /** The function's timeout: an invocation still running then is ended. @default 60 s */
  readonly timeoutMs?: number;
  /** The function's name, for AWS_LAMBDA_FUNCTION_NAME. @default 'local-function' */
  readonly functionName?: string;
}

export interface LocalFunction {
  /** Answers one invocation as Lambda would: pass it to `LocalLambda.respondWith`. */
  invoke(invocation: Pick<LambdaInvocation, 'text'>): Promise<LambdaAnswer>;
  /** Execution environments started so far (cold starts). */
  readonly started: number;
  /** What the environments wrote to stdout and stderr, line by line. */
  readonly logs: string[];
  /** Ends every environment. */
  stop(): Promise<void>;
}

interface Answer {
  readonly id?: string;
  readonly payload?: string;
  readonly encoding?: 'utf8' | 'base64';
  readonly error?: string;
}

class Environment {
  private readonly pending = new Map<string, (a: Answer) => void>();
  readonly ready: Promise<void>;
  exited = false;

  constructor(
    readonly child: ChildProcess,
    logs: string[],
  ) {
    for (const out of [child.stdout, child.stderr]) {
      out?.setEncoding('utf8');
      out?.on('data', (text: string) => logs.push(...text.split('\n').filter((l) => l !== '')));
    }
    this.ready = new Promise((resolve, reject) => {
      child.on('message', (m: { type: string } & Answer) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'answer' && m.id) {
          this.pending.get(m.id)?.(m);
          this.pending.delete(m.id);
        }
      });
      child.once('exit', (code, signal) => {
        this.exited = true;
        const error = `the execution environment exited (${signal ?? `code ${code}`})`;
        reject(new Error(error));
        for (const settle of this.pending.values()) settle({ error: JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: error }) });
        this.pending.clear();
      });
    });
  }

  run(payload: string, timeoutMs: number): Promise<Answer> {
    const id = randomUUID();
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ id, payload, requestId: id, deadline: Date.now() + timeoutMs });
    });
  }
}

export function startLocalFunction(options: LocalFunctionOptions): LocalFunction {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const idle: Environment[] = [];
  const all = new Set<Environment>();
  const logs: string[] = [];
  let started = 0;

  const startEnvironment = (): Environment => {
    started++;
    const child = fork(ENVIRONMENT, [], {
      execArgv: NODE_FLAGS,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        PATH: process.env.PATH ?? '',
        ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
        LAMBDA_TASK_ROOT: path.resolve(options.codeDir),
        LOCAL_FUNCTION_HANDLER: options.handler ?? 'index.handler',
        AWS_LAMBDA_FUNCTION_NAME: options.functionName ?? 'local-function',
        AWS_REGION: 'eu-west-1',
        ...options.environment,
      },
    });
    const env = new Environment(child, logs);
    all.add(env);
    return env;
  };

  const invoke = async (invocation: Pick<LambdaInvocation, 'text'>): Promise<LambdaAnswer> => {
    const env = idle.pop() ?? startEnvironment();
    try {
      await env.ready;
    } catch (e) {
      all.delete(env);
      return { functionError: 'Unhandled', payload: { errorType: 'Runtime.ExitError', errorMessage: (e as Error).message } };
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const answer = await Promise.race([env.run(invocation.text, timeoutMs), timedOut]);
    clearTimeout(timer);
    if (answer === 'timeout') {
      // Lambda ends the environment of an invocation that timed out; the next one starts cold.
      all.delete(env);
      env.child.kill('SIGKILL');
      const seconds = (timeoutMs / 1000).toFixed(2);
      return { functionError: 'Unhandled', payload: { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${randomUUID()} Error: Task timed out after ${seconds} seconds` } };
    }
    if (env.exited) all.delete(env);
    else idle.push(env);
    if (answer.error !== undefined) return { functionError: 'Unhandled', payload: answer.error };
    return { payload: Buffer.from(answer.payload ?? '', answer.encoding ?? 'utf8') };
  };

  return {
    invoke,
    get started() {
      return started;
    },
    logs,
    async stop() {
      const ending = [...all].map((env) =>
        env.exited
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              env.child.once('exit', () => resolve());
              env.child.kill('SIGKILL');
            }),
      );
      all.clear();
      idle.length = 0;
      await Promise.all(ending);
    },
  };
}
