import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRICS_NAMESPACE, METRIC } from '../contract/metrics';
import { ENV } from '../contract/environment';
import { MODEL_COPY_ENV, MODEL_COPY_HANDLER, MODEL_COPY_PROPERTY, MODEL_COPY_RESOURCE_TYPE } from '../contract/model-copy';
import { PRE_TRAFFIC_ENV } from '../contract/pre-traffic-check';
import { ROUTES } from '../contract/routes';
import { SAGEMAKER_HEADER } from '../contract/sagemaker';
import { WARMER_ENV, WARMER_METRIC, WARMER_METRIC_DIMENSION, WARMER_SOURCE } from '../contract/warmup';
import { InferenceRoute } from '../lib/api/inference-api';

const ROOT = path.resolve(__dirname, '..');

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts'))
    .map((d) => path.join(d.parentPath, d.name));
}

/** Every name the constructs and the handlers must agree on, by where the contract defines it. */
const SHARED_NAMES: Record<string, string> = Object.fromEntries(
  [
    ...Object.entries(ENV).map(([k, v]) => [v, `ENV.${k}`]),
    ...Object.entries(METRIC).map(([k, v]) => [v, `METRIC.${k}`]),
    ...Object.entries(MODEL_COPY_PROPERTY).map(([k, v]) => [v, `MODEL_COPY_PROPERTY.${k}`]),
    ...Object.entries(MODEL_COPY_ENV).map(([k, v]) => [v, `MODEL_COPY_ENV.${k}`]),
    // 'index.handler' is every other function's handler too.
    ...(['START', 'IS_COMPLETE'] as const).map((k) => [MODEL_COPY_HANDLER[k], `MODEL_COPY_HANDLER.${k}`]),
    ...Object.entries(PRE_TRAFFIC_ENV).map(([k, v]) => [v, `PRE_TRAFFIC_ENV.${k}`]),
    ...Object.entries(WARMER_ENV).map(([k, v]) => [v, `WARMER_ENV.${k}`]),
    ...Object.entries(WARMER_METRIC).map(([k, v]) => [v, `WARMER_METRIC.${k}`]),
    [WARMER_METRIC_DIMENSION, 'WARMER_METRIC_DIMENSION'],
    ...Object.entries(SAGEMAKER_HEADER).map(([k, v]) => [v, `SAGEMAKER_HEADER.${k}`]),
    [METRICS_NAMESPACE, 'METRICS_NAMESPACE'],
    [MODEL_COPY_RESOURCE_TYPE, 'MODEL_COPY_RESOURCE_TYPE'],
    [WARMER_SOURCE, 'WARMER_SOURCE'],
  ].map(([value, name]) => [value, name]),
);

/** Quoted literals (or bare object keys) that spell a shared name instead of importing it. */
function retyped(file: string): string[] {
  // Comments may name what the code imports; code may not spell it.
  const text = fs
    .readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const [value, name] of Object.entries(SHARED_NAMES)) {
    const quoted = new RegExp(`['"\`]${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\`]`);
    const key = new RegExp(`(^|[{,])\\s*${value}\\s*:`, 'm');
    if (quoted.test(text) || (/^[A-Za-z_]+$/.test(value) && key.test(text))) {
      found.push(`${path.relative(ROOT, file)} spells '${value}' (use ${name})`);
    }
  }
  return found;
}

describe('the contract between constructs and handlers', () => {
  it('is the only place that spells a shared name: lib/ and handlers/ import it', () => {
    const files = [...sourceFiles(path.join(ROOT, 'lib')), ...sourceFiles(path.join(ROOT, 'handlers'))];
    expect(files.length).toBeGreaterThan(40);
    expect(files.flatMap(retyped)).toEqual([]);
  });

  it('finds a name spelled out, so the check above can fail', () => {
    const file = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'csi-contract-')), 'x.ts');
    fs.writeFileSync(file, "const env = { MODEL_PATH: '/opt/m.onnx' };\nmetric('ColdStart');\n");
    expect(retyped(file).sort()).toEqual([
      expect.stringMatching(/spells 'ColdStart' \(use METRIC.COLD_START\)/),
      expect.stringMatching(/spells 'MODEL_PATH' \(use ENV.MODEL_PATH\)/),
    ]);
  });

  it('lib/ imports no handler code, and no handler imports lib/', () => {
    const imports = (dir: string, forbidden: RegExp) =>
      sourceFiles(path.join(ROOT, dir)).flatMap((file) =>
        [...fs.readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)]
          .map((m) => path.resolve(path.dirname(file), m[1]))
          .filter((target) => forbidden.test(path.relative(ROOT, target)))
          .map((target) => `${path.relative(ROOT, file)} imports ${path.relative(ROOT, target)}`),
      );
    expect(imports('lib', /^handlers\//)).toEqual([]);
    expect(imports('handlers', /^lib\//)).toEqual([]);
  });

  it("has one route table: InferenceRoute's values are the contract's route kinds, no more, no fewer", () => {
    expect(Object.values(InferenceRoute).sort()).toEqual(
      Object.values(ROUTES)
        .map((r) => r.kind)
        .sort(),
    );
  });
});
