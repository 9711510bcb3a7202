// The quick start's demo: synthesize the demo app, then serve the demo model locally through the
// same S3 path a deployed S3ModelEndpoint takes (a loopback S3 server, the real AWS SDK, the real
// handler bundle and onnxruntime), send one request and check the answer against the model.
//
//   npm run demo            serves until Ctrl-C, so the printed curl line works
//   npm run demo -- --once  exits after the first prediction (what the tests run)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startInferenceServer } from '../lib/local/inference-server';
import { loadInferenceHandler } from '../lib/local/load-handler';
import { startLocalS3 } from '../tools/local-s3';
import { DEMO_FEATURES, DEMO_MODEL_FILE, DEMO_MODEL_NAME, demoModel } from '../fixtures/demo-model';

const ROOT = path.resolve(__dirname, '..');
// The AWS SDK warns once that it will need Node 22; Lambda runs 22/24, and the demo needs no reminder.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const once = process.argv.includes('--once');

async function main(): Promise<void> {
  step('1/3', 'cdk synth of the demo app (no AWS account, no network, no Docker)');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'csi-demo-cdk-out-'));
  // Removed however the demo ends, a failed synth included.
  process.once('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'cdk'), ['synth', '--quiet', '--output', out], { cwd: ROOT, stdio: 'inherit' });
  const template = JSON.parse(fs.readFileSync(path.join(out, 'CdkServerlessInferenceDemo.template.json'), 'utf8'));
  const types = Object.values<{ Type: string }>(template.Resources).map((r) => r.Type);
  // The version the deployed function reports, set at synth from the model's content hash: the local
  // run reports it too, so its answers are the deployed endpoint's.
  const modelVersion = deployedModelVersion(template);
  const stacks = fs
    .readdirSync(out)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => f.replace('.template.json', ''));
  console.log(`   ${stacks.length} stacks, cdk-nag clean: ${stacks.join(', ')}`);
  console.log(
    `   the quick start's: ${types.length} resources, ${count(types, 'AWS::Lambda::Function')} functions, ${count(types, 'AWS::S3::Bucket')} buckets, an API Gateway REST API`,
  );
  fs.rmSync(out, { recursive: true, force: true });

  step('2/3', 'the model in a local S3 server, fetched by the real handler as on Lambda');
  const s3 = await startLocalS3();
  const key = `models/${DEMO_MODEL_NAME}/${path.basename(DEMO_MODEL_FILE)}`;
  await s3.createBucket('demo-models');
  await s3.putObject('demo-models', key, fs.readFileSync(DEMO_MODEL_FILE));
  // The function's /tmp, removed when the demo ends.
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'csi-demo-tmp-'));
  process.once('exit', () => fs.rmSync(cacheDir, { recursive: true, force: true }));
  Object.assign(process.env, s3.env(), {
    MODEL_S3_URI: `s3://demo-models/${key}`,
    MODEL_NAME: DEMO_MODEL_NAME,
    MODEL_VERSION: modelVersion,
    MODEL_CACHE_DIR: cacheDir,
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  const handler = await loadInferenceHandler();
  const server = await startOnFreePort(handler);
  console.log(`   s3://demo-models/${key} -> handler at ${server.url}`);

  step('3/3', 'a prediction over HTTP');
  const body = { id: 'demo-1', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: DEMO_FEATURES }] };
  const res = await fetch(`${server.url}/v2/models/${DEMO_MODEL_NAME}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as { model_version: string; outputs: { name: string; data: number[] }[] };
  const output = (name: string) => answer.outputs.find((o) => o.name === name)?.data ?? [];
  const rows = [DEMO_FEATURES.map(Math.fround)];
  const [expected] = demoModel().predict(rows);
  const [expectedLabel] = demoModel().predictLabels(rows);
  const [probabilities, [label]] = [output('probabilities'), output('label')];
  const matches = res.status === 200 && label === expectedLabel && probabilities.length === expected.length && probabilities.every((p, i) => Math.abs(p - expected[i]) < 1e-5);
  console.log(`   HTTP ${res.status}: label = ${label}, probabilities = [${probabilities.map((p) => p.toFixed(4)).join(', ')}], model version ${answer.model_version}`);
  console.log(
    `   the model's plain-JS reference: label = ${expectedLabel}, probabilities = [${expected.map((p) => p.toFixed(4)).join(', ')}] -> ${matches ? 'match' : 'MISMATCH'}`,
  );

  if (!matches || once) {
    await server.close();
    await s3.stop();
    process.exitCode = matches ? 0 : 1;
    return;
  }
  console.log('\nAnother prediction (Ctrl-C stops the demo):');
  console.log(`  curl -s -X POST ${server.url}/v2/models/${DEMO_MODEL_NAME}/infer -H 'Content-Type: application/json' \\`);
  console.log(`    -d '${JSON.stringify({ inputs: [{ ...body.inputs[0], data: [1.0, 0.2, -0.4, 2.5] }] })}'`);
  process.once('SIGINT', () => void Promise.all([server.close(), s3.stop()]).then(() => process.exit(0)));
}

/** Port 8080 when it is free, so the printed curl line is the usual one; any free port otherwise. */
async function startOnFreePort(handler: Awaited<ReturnType<typeof loadInferenceHandler>>) {
  try {
    return await startInferenceServer({ handler, port: 8080 });
  } catch {
    return startInferenceServer({ handler, port: 0 });
  }
}

/** MODEL_VERSION of the quick start's inference function in its synthesized template. */
function deployedModelVersion(template: { Resources: Record<string, { Type: string; Properties?: { Environment?: { Variables?: Record<string, unknown> } } }> }): string {
  const versions = Object.values(template.Resources)
    .map((r) => (r.Type === 'AWS::Lambda::Function' ? r.Properties?.Environment?.Variables : undefined))
    .filter((v) => v?.MODEL_NAME === DEMO_MODEL_NAME)
    .map((v) => v?.MODEL_VERSION);
  if (versions.length !== 1 || typeof versions[0] !== 'string') {
    throw new Error(`expected one inference function with MODEL_VERSION in the demo's template, found: ${JSON.stringify(versions)}`);
  }
  return versions[0];
}

function step(n: string, what: string): void {
  console.log(`\n[${n}] ${what}`);
}

function count(items: string[], item: string): number {
  return items.filter((i) => i === item).length;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
