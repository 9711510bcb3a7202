/**
 * Synth: `cdk synth` of the demo app against the CDK CLI doing nothing useful (`cdk --version`),
 * and, in a full run, the unit-test suite against vitest's own start (`vitest --version`).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ms, spread, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly output: string;
}

/** Wall time from spawn() to exit, measured here. */
function timed(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, code, output }));
  });
}

function mustSucceed(r: Timed, what: string): Timed {
  if (r.code !== 0) throw new Error(`${what} failed with code ${r.code}:\n${r.output.slice(-2000)}`);
  return r;
}

export const synth: Bench = {
  name: 'synth',
  title: 'Synth and test suite time',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const runs = 3;
    const root = ctx.repoRoot;
    const noValidation = { ...process.env, CDK_VALIDATION: 'false' };
    const samples: Record<'version' | 'synth' | 'synthNoValidation', number[]> = { version: [], synth: [], synthNoValidation: [] };
    for (let i = 0; i < runs; i++) {
      samples.version.push(mustSucceed(await timed('npx', ['cdk', '--version'], root), 'cdk --version').ms);
      for (const [key, env] of [
        ['synth', process.env],
        ['synthNoValidation', noValidation],
      ] as const) {
        const out = path.join(ctx.tmpDir, `synth-${key}-${i}`);
        samples[key].push(mustSucceed(await timed('npx', ['cdk', 'synth', '--quiet', '-o', out], root, env), 'cdk synth').ms);
        fs.rmSync(out, { recursive: true, force: true });
      }
      ctx.log(`synth: run ${i + 1}/${runs} done`);
    }
    const s = { version: summarize(samples.version), synth: summarize(samples.synth), synthNoValidation: summarize(samples.synthNoValidation) };
    const rows = [
      ['baseline: `npx cdk --version`', spread(s.version), '1', '0'],
      [
        `\`npx cdk synth --quiet -o <tmp>\` (CDK_VALIDATION ${process.env.CDK_VALIDATION ?? 'unset'})`,
        spread(s.synth),
        times(s.synth.p50 / s.version.p50),
        ms(s.synth.p50 - s.version.p50),
      ],
      [
        'the same with CDK_VALIDATION=false (the CLI skips its post-synth validation)',
        spread(s.synthNoValidation),
        times(s.synthNoValidation.p50 / s.version.p50),
        ms(s.synthNoValidation.p50 - s.version.p50),
      ],
    ];

    let suite: { baseline: Summary; ms: number; code: number | null; summary: string } | undefined;
    if (!ctx.quick) {
      const versions: number[] = [];
      for (let i = 0; i < runs; i++) versions.push(mustSucceed(await timed('npx', ['vitest', '--version'], root), 'vitest --version').ms);
      ctx.log('synth: running the unit-test suite once (npx vitest run)');
      const run = await timed('npx', ['vitest', 'run'], root);
      suite = { baseline: summarize(versions), ms: run.ms, code: run.code, summary: vitestSummary(run.output) };
      rows.push(
        ['baseline: `npx vitest --version`', spread(suite.baseline), '1', '0'],
        [`\`npx vitest run\`, once (exit code ${run.code}; ${suite.summary})`, ms(run.ms), times(run.ms / suite.baseline.p50), ms(run.ms - suite.baseline.p50)],
      );
    }
    return {
      method:
        `Wall time from spawn() to exit, measured by the bench, of each command in the repository; ${runs} runs each, ` +
        'interleaved, for the CLI commands (min / median / max). The synth is of the demo app of `cdk.json` ' +
        '(`npx tsx demo/app.ts`: every demo stack, cdk-nag as a gate) into a new folder each time. ' +
        (ctx.quick ? 'The unit-test suite is left out of a `--quick` run.' : 'The unit-test suite ran once, as `npm test` runs it (without the build).'),
      tables: [{ columns: ['command', 'time min / median / max (ms)', 'vs baseline (median)', 'over baseline (ms)'], rows }],
      notes: [
        'The baseline pays for npx and the CDK CLI (or vitest) starting; what a synth adds over it is the app: loading TypeScript ' +
          'through tsx, aws-cdk-lib, the constructs, the cdk-nag packs, and writing the cloud assembly.',
      ],
      data: { runs, unit: 'ms', cli: s, suite },
    };
  },
};

/** vitest's own "Test Files ... Tests ..." lines, without colours. */
function vitestSummary(output: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the colour codes this removes
  const plain = output.replace(/\u001b\[[0-9;]*m/g, '');
  const lines = plain.split('\n').map((l) => l.trim());
  const files = lines.find((l) => l.startsWith('Test Files'));
  const tests = lines.find((l) => l.startsWith('Tests '));
  return (
    [files, tests]
      .filter(Boolean)
      .map((l) => l!.replace(/\s+/g, ' '))
      .join('; ') || 'no summary found'
  );
}
