import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

/** The command as a user runs it (from the compiled package: `npm run build` first, as npm test does). */
export const CLI = path.resolve(__dirname, '..', '..', 'bin', 'cdk-serverless-inference.js');

export interface Served {
  /** The serve process itself (node runs the CLI directly: no npx in between). */
  child: ChildProcess;
  url: string;
  /** Everything the command printed so far, stdout and stderr. */
  output(): string;
}

/** Starts `cdk-serverless-inference serve` as a user would, and waits for the URL it prints. */
export function startServe(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in ${timeoutMs / 1000} s:\n${out}`));
    }, timeoutMs);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/\S+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output: () => out });
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${out}`));
    });
  });
}

/** Runs the command to its end; one still running after `timeoutMs` is killed and reported with code null. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let output = '';
    // Generous: worker threads loading models on a busy 2-core machine can take a while.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 50_000);
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
