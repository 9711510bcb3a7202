import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../fixtures/demo-model';
import { tempDir } from './support/handler';

/*
 * What a user gets: the library packed as `npm publish` packs it, installed from the tarball into a
 * new app beside aws-cdk-lib, constructs and cdk-nag from the registry, with onnxruntime-node
 * installed by the README's own commands. The app synthesizes several endpoints and runs cdk-nag's
 * AwsSolutions and Serverless packs. Once with the newest aws-cdk-lib the peer range allows (a
 * newer one may know a newer Lambda runtime, which cdk-nag then expects), once with its floor.
 * Everything it writes is in its own temp folder; npm keeps its usual cache.
 */

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The environment without what `npm test` passes to its scripts: npm_config_local_prefix would point npm back here. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

/** Runs a command to its end in `cwd`; its stdout, stderr, or a failure with both. */
function run(command: string, args: string[], cwd: string): { stdout: string; stderr: string } {
  const r = spawnSync(command, args, { cwd, env: cleanEnv(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}) in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** The lowest version a `^x.y.z` range takes. */
function floorOf(range: string): string {
  const m = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  if (!m) throw new Error(`expected a ^x.y.z range, got: ${range}`);
  return m[1];
}

/** The newest release (no pre-release) of `name` in `range`, as the registry lists them now. */
function newestInRange(name: string, range: string): string {
  const listed = JSON.parse(run('npm', ['view', `${name}@${range}`, 'version', '--json'], ROOT).stdout) as string | string[];
  const releases = (Array.isArray(listed) ? listed : [listed]).filter((v) => /^\d+\.\d+\.\d+$/.test(v));
  const key = (v: string) => v.split('.').map(Number);
  return releases.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  })[releases.length - 1];
}

/** The README's commands that install onnxruntime-node in an app, in order. */
function readmeOnnxRuntimeInstall(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const lines = readme.split('\n').filter((line) => /^npm pkg set allowScripts\./.test(line) || /^npm install .*onnxruntime-node@/.test(line));
  expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['npm pkg set', 'npm install -D']);
  return lines;
}

/** The app: each packaging with its defaults, IAM grants, a rollout with monitoring; prints what the test checks. */
const APP = `
const { App, Stack } = require('aws-cdk-lib');
const { Annotations, Match } = require('aws-cdk-lib/assertions');
const iam = require('aws-cdk-lib/aws-iam');
const lambda = require('aws-cdk-lib/aws-lambda');
const { AwsSolutionsChecks, ServerlessChecks } = require('cdk-nag');
const csi = require('${PKG.name}');

const app = new App();
const stack = new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'eu-west-1' } });
const model = () => csi.ModelSource.fromAsset('model.onnx');
const backend = new iam.Role(stack, 'Backend', { assumedBy: new iam.AccountRootPrincipal() });
const endpoints = [
  new csi.S3ModelEndpoint(stack, 'S3', {
    model: model(),
    monitoring: {},
    rollout: { sampleRequest: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, -1.2, 3.3, 0.7] }] } },
  }),
  new csi.LayerModelEndpoint(stack, 'Layer', { model: model() }),
  new csi.BundledModelEndpoint(stack, 'Bundled', { model: model() }),
  new csi.EfsModelEndpoint(stack, 'Efs', { model: model() }),
  new csi.ContainerModelEndpoint(stack, 'Container', { model: model() }),
  new csi.SageMakerProxyEndpoint(stack, 'SageMaker', { endpoint: csi.SageMakerEndpoint.fromEndpointName('team-endpoint') }),
];
for (const endpoint of endpoints) endpoint.grantInvoke(backend);

const findings = [new AwsSolutionsChecks(app), new ServerlessChecks(app)].flatMap((pack) =>
  pack.validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => v.ruleName + ' @ ' + r.constructPath)),
);
const annotations = Annotations.fromStack(stack);
const notes = (kind) => annotations['find' + kind]('*', Match.anyValue()).map((a) => a.id + ': ' + a.entry.data);
const resources = Object.values(app.synth().getStackByName('Consumer').template.Resources);
const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function');
const nodeMajors = Object.keys(lambda.Runtime).map((k) => /^NODEJS_(\\d+)_X$/.exec(k)).filter(Boolean).map((m) => Number(m[1]));
console.log(JSON.stringify({
  awsCdkLib: require('aws-cdk-lib/package.json').version,
  newestNodeRuntime: 'nodejs' + Math.max(...nodeMajors) + '.x',
  findings,
  warnings: notes('Warning'),
  errors: notes('Error'),
  zipRuntimes: Object.fromEntries(stack.node.findAll().filter((c) => c instanceof lambda.CfnFunction && c.runtime).map((c) => [c.node.path, c.runtime])),
  layerRuntimes: resources.filter((r) => r.Type === 'AWS::Lambda::LayerVersion' && /onnxruntime/.test(r.Properties.Description ?? '')).map((r) => r.Properties.CompatibleRuntimes),
  precompiled: functions.filter((f) => Object.keys(f.Properties.Environment?.Variables ?? {}).some((v) => v.startsWith('MODEL_PRECOMPILED_'))).length,
}));
`;

describe('an app that installs the packed library from its tarball', () => {
  let tarball: string;

  beforeAll(() => {
    // Needs the build (npm test builds first): the tarball holds dist/, assets/ and .jsii.
    if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'index.js'))) throw new Error('run `npm run build` first (npm test does)');
    const packDir = tempDir('csi-pack-');
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packDir], ROOT).stdout) as Array<{ filename: string }>;
    tarball = path.join(packDir, packed.filename);
  }, 120_000);

  const cases: Array<[string, () => { awsCdkLib: string; constructs: string; cdkNag: string }]> = [
    [
      'the newest aws-cdk-lib the peer range allows',
      () => ({
        awsCdkLib: newestInRange('aws-cdk-lib', PKG.peerDependencies['aws-cdk-lib']),
        constructs: newestInRange('constructs', PKG.peerDependencies.constructs),
        cdkNag: newestInRange('cdk-nag', `^${PKG.devDependencies['cdk-nag']}`),
      }),
    ],
    [
      'the oldest aws-cdk-lib the peer range allows',
      () => ({ awsCdkLib: floorOf(PKG.peerDependencies['aws-cdk-lib']), constructs: floorOf(PKG.peerDependencies.constructs), cdkNag: PKG.devDependencies['cdk-nag'] }),
    ],
  ];

  it.each(cases)(
    'with %s: installs without a warning, synthesizes with no cdk-nag finding, on the newest Node.js runtime it knows',
    (_which, versions) => {
      const { awsCdkLib, constructs, cdkNag } = versions();
      const app = tempDir('csi-consumer-');
      fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }, null, 2)}\n`);

      // onnxruntime-node exactly as the README installs it; its install script would download CUDA binaries.
      const npmOutput: string[] = [];
      for (const command of readmeOnnxRuntimeInstall()) {
        const r = run('sh', ['-c', command], app);
        npmOutput.push(r.stdout, r.stderr);
      }
      const installed = run('npm', ['install', '--no-audit', '--no-fund', tarball, `aws-cdk-lib@${awsCdkLib}`, `constructs@${constructs}`, `cdk-nag@${cdkNag}`], app);
      npmOutput.push(installed.stdout, installed.stderr);
      expect(npmOutput.join('\n')).not.toMatch(/npm warn/i);
      const manifest = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
      expect(manifest.allowScripts).toEqual({ 'onnxruntime-node': false });

      fs.copyFileSync(DEMO_MODEL_FILE, path.join(app, 'model.onnx'));
      fs.writeFileSync(path.join(app, 'app.js'), APP);
      const synth = run(process.execPath, ['app.js'], app);
      const result = JSON.parse(synth.stdout.trim().split('\n').pop()!);

      expect(result.awsCdkLib).toBe(awsCdkLib);
      expect(result.findings).toEqual([]);
      expect(result.warnings).toEqual([]);
      expect(result.errors).toEqual([]);
      // The library's functions run the newest runtime; aws-cdk-lib's own providers (AwsCustomResource's
      // singleton, the custom resource framework's onEvent, isComplete and onTimeout) pick theirs, and the library acknowledges them.
      const notNewest = Object.keys(result.zipRuntimes).filter((p) => result.zipRuntimes[p] !== result.newestNodeRuntime);
      expect(notNewest.filter((p) => !/\/AWS679f53fac002430cb0da5b7982bd2287\/|\/ModelCopyProvider\/framework-(onEvent|isComplete|onTimeout)\//.test(p))).toEqual([]);
      expect(Object.keys(result.zipRuntimes).length - notNewest.length).toBeGreaterThanOrEqual(13);
      expect(result.layerRuntimes.length).toBeGreaterThan(0);
      for (const runtimes of result.layerRuntimes) expect(runtimes).toContain(result.newestNodeRuntime);
      // The README's onnxruntime-node is the layer's version: every local model ships precompiled.
      expect(result.precompiled).toBe(5);
    },
    300_000,
  );
});
