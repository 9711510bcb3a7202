import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** What a child script prints, on one line, once it has its figures (or, for a server, once it listens). */
const RESULT_PREFIX = 'BENCH_RESULT ';

export interface ChildOptions {
  readonly repoRoot: string;
  readonly env?: Record<string, string>;
  /** @default 120000 */
  readonly timeoutMs?: number;
}

export interface ChildRun<T> {
  /** The JSON the child printed after RESULT_PREFIX. */
  readonly result: T;
  /** From just before spawn() until that line reached this process: a cross-check of the child's own clock. */
  readonly parentMs: number;
}

export interface RunningChild<T> {
  readonly ready: T;
  stop(): Promise<void>;
}

/**
 * Runs `bench/children/<script>` to its end in a fresh `node`, without tsx (whose loader would add
 * to every start). The child gets BENCH_T0, this process's `process.hrtime` just before spawn():
 * CLOCK_MONOTONIC is one clock for all processes, so the child can time itself from the spawn.
 */
export function runChild<T>(script: string, options: ChildOptions): Promise<ChildRun<T>> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const { child, output } = spawnChild(script, options, { BENCH_T0: t0.toString() });
    let result: ChildRun<T> | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.stdout!.on('data', () => {
      const line = resultLine(output.stdout);
      if (result === undefined && line !== undefined) {
        result = { result: JSON.parse(line) as T, parentMs: Number(process.hrtime.bigint() - t0) / 1e6 };
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined && code === 0) resolve(result);
      else reject(failure(script, `ended with ${signal ?? `code ${code}`} and no result`, output));
    });
  });
}

/** Starts a long-lived child (a server) and resolves with what it prints once ready. */
export function startChild<T>(script: string, options: ChildOptions): Promise<RunningChild<T>> {
  return new Promise((resolve, reject) => {
    const { child, output } = spawnChild(script, options, {});
    const closed = new Promise<void>((done) => child.on('close', () => done()));
    let ready = false;
    child.stdout!.on('data', () => {
      const line = resultLine(output.stdout);
      if (!ready && line !== undefined) {
        ready = true;
        resolve({
          ready: JSON.parse(line) as T,
          stop: async () => {
            child.kill('SIGTERM');
            await closed;
          },
        });
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (!ready) reject(failure(script, `ended with code ${code} before it was ready`, output));
    });
  });
}

function spawnChild(script: string, options: ChildOptions, extraEnv: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [path.join(options.repoRoot, 'bench', 'children', script)], {
    cwd: options.repoRoot,
    env: {
      ...process.env,
      // As the constructs set them for a quiet function; the figures are about the work, not the logs.
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...options.env,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  return { child, output };
}

function resultLine(stdout: string): string | undefined {
  const start = stdout.indexOf(RESULT_PREFIX);
  const end = start < 0 ? -1 : stdout.indexOf('\n', start);
  return end < 0 ? undefined : stdout.slice(start + RESULT_PREFIX.length, end);
}

function failure(script: string, what: string, output: { stdout: string; stderr: string }): Error {
  return new Error(`bench/children/${script} ${what}:\n${output.stderr.slice(-2000)}${output.stdout.slice(-500)}`);
}
