/**
 * The benchmarks of issue 6: `tsx bench/run.ts [--quick] [--only <name>[,<name>]]`.
 * Writes bench/results/latest.md, latest.json and the charts; asserts nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { batching } from './batching';
import { asyncInference } from './async-inference';
import { batch } from './batch';
import { coldStart } from './cold-start';
import { fronts } from './fronts';
import type { Bench, BenchRecord, Machine, Results } from './lib/types';
import { renderMarkdown } from './lib/markdown';
import { modelRepository } from './model-repository';
import { s3Fetch } from './s3-fetch';
import { s3Parallel } from './s3-parallel';
import { sizes } from './sizes';
import { synth } from './synth';
import { throughput } from './throughput';
import { warmOverhead } from './warm-overhead';

const BENCHES: readonly Bench[] = [warmOverhead, fronts, coldStart, s3Fetch, s3Parallel, throughput, batching, sizes, synth, modelRepository, asyncInference, batch];

const REPO_ROOT = path.resolve(__dirname, '..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

function parseArgs(argv: readonly string[]): { quick: boolean; only?: Set<string> } {
  let quick = false;
  let only: Set<string> | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') {
      quick = true;
    } else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) throw new Error('--only needs a benchmark name');
      only = new Set([...(only ?? []), ...value.split(',').map((s) => s.trim())]);
    } else {
      throw new Error(`unknown option ${arg}; use --quick and/or --only <name>`);
    }
  }
  const unknown = [...(only ?? [])].filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark ${unknown.join(', ')}; the benchmarks are ${BENCHES.map((b) => b.name).join(', ')}`);
  }
  return { quick, only };
}

function packageVersion(name: string): string {
  const file = path.join(REPO_ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntime: packageVersion('onnxruntime-node'),
    awsCdkLib: packageVersion('aws-cdk-lib'),
    loadAverage: Number(os.loadavg()[0].toFixed(2)),
  };
}

/** An `--only` run keeps the other benchmarks' records from the previous run. */
function previousRecords(): Record<string, BenchRecord> {
  try {
    return (JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, 'latest.json'), 'utf8')) as Results).benchmarks ?? {};
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  // The SDK's notice about Node versions, from the local S3 server's client: noise in the bench's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const selected = BENCHES.filter((b) => !only || only.has(b.name));
  const date = new Date().toISOString();
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'csi-bench-'));
  const started = performance.now();
  const log = (message: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);
  const records = only ? previousRecords() : {};
  const facts = machine();
  log(`${selected.map((b) => b.name).join(', ')}${quick ? ' (quick)' : ''}; ${facts.cpu}, ${facts.cores} cores, node ${facts.node}`);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  try {
    for (const bench of selected) {
      const benchStarted = performance.now();
      const benchDate = new Date().toISOString();
      log(`${bench.name}: ${bench.title}`);
      const { files, ...output } = await bench.run({ quick, repoRoot: REPO_ROOT, tmpDir, log });
      const seconds = Number(((performance.now() - benchStarted) / 1000).toFixed(1));
      records[bench.name] = { name: bench.name, title: bench.title, date: benchDate, quick, seconds, ...output, files: Object.keys(files ?? {}) };
      for (const [name, content] of Object.entries(files ?? {})) {
        fs.writeFileSync(path.join(RESULTS_DIR, name), content);
      }
      log(`${bench.name}: done in ${seconds} s`);
    }
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  // Keep the report in the order of BENCHES whichever ran.
  const benchmarks = Object.fromEntries(BENCHES.filter((b) => records[b.name]).map((b) => [b.name, records[b.name]]));
  const results: Results = { machine: facts, date, benchmarks };
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.md'), renderMarkdown(results));
  log(`wrote ${path.relative(REPO_ROOT, RESULTS_DIR)}/latest.md and latest.json`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
