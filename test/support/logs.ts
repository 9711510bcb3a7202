import { vi } from 'vitest';

/** What the handler logged: its JSON lines (Powertools' and its own), parsed. */
export interface CapturedLogs {
  lines(): any[];
  /** Every line, as one text, to search for what must (or must not) be anywhere in the log. */
  text(): string;
  stop(): void;
}

/** Collects the handler's structured log (JSON lines on stdout, stderr and the console) until `stop()`. */
export function captureLogs(): CapturedLogs {
  let text = '';
  const grab = ((chunk: unknown) => {
    text += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(grab);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(grab);
  // Vitest takes console output before it reaches the streams.
  const line = (...args: unknown[]) => void grab(`${args.map(String).join(' ')}\n`);
  const consoles = (['log', 'info', 'warn', 'error'] as const).map((m) => vi.spyOn(console, m).mockImplementation(line));
  return {
    lines: (): any[] =>
      text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l)),
    text: () => text,
    stop: () => {
      out.mockRestore();
      err.mockRestore();
      for (const c of consoles) c.mockRestore();
    },
  };
}

/**
 * Runs `create` (which builds a handler) with the handler's logger at `level`: the test setup
 * silences it otherwise, and Powertools reads the level when the logger is made.
 */
export async function withLogLevel<T>(create: () => Promise<T>, level = 'INFO'): Promise<T> {
  const saved = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = level;
  try {
    return await create();
  } finally {
    if (saved === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = saved;
  }
}

/** Runs `fn` and returns its result with what was logged meanwhile. */
export async function logged<T>(fn: () => Promise<T>): Promise<{ result: T; logs: any[]; text: string }> {
  const logs = captureLogs();
  try {
    const result = await fn();
    return { result, logs: logs.lines(), text: logs.text() };
  } finally {
    logs.stop();
  }
}
