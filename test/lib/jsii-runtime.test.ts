import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logisticRegressionModel, notOnnxBytes } from '../../tools/onnx';
import { tempDir, writeModel } from '../support/handler';
import { extractExamples } from '../support/readme-examples';

/*
 * The Python, Java, .NET and Go packages that jsii-pacmak generates are thin proxies: each spawns
 * @jsii/runtime (a Node.js process with the jsii kernel inside), loads npm tarballs into it and sends
 * it JSON requests, one per line, over stdio. This test is such a host: it drives the library's
 * assembly through the same process and protocol, so a type that only works from TypeScript (or a
 * tarball that lacks the .jsii file or the prebuilt assets) fails here rather than in a user's app.
 */

const ROOT = path.resolve(__dirname, '../..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  peerDependencies: Record<string, string>;
  jsii: { outdir: string };
};
const LIB = PKG.name;

// The bindings embed the self-contained webpack build of the runtime (the kernel bundled inside);
// the package's own bin would load the kernel from node_modules instead.
const RUNTIME = installedPackage('@jsii/runtime', ROOT);
const RUNTIME_BIN = path.join(RUNTIME.dir, 'webpack', 'bin', 'jsii-runtime.js');

// The registry tarballs (aws-cdk-lib's is ~30 MB) are kept across runs, keyed by version, outside
// the repository.
const TARBALL_CACHE = path.join(process.env.CSI_CACHE_TMP ?? os.tmpdir(), 'cdk-serverless-inference-jsii', 'tarballs');

interface Tarball {
  name: string;
  version: string;
  tarball: string;
}

interface InstalledPackage {
  name: string;
  version: string;
  dir: string;
  /** The jsii assemblies it needs loaded first: its peer and non-bundled dependencies. */
  jsiiDependencies: string[];
}

/** A dependency as npm installed it for `fromDir`: the nearest `node_modules/<name>` up the tree. */
function installedPackage(name: string, fromDir: string): InstalledPackage {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(pkgDir, 'package.json'))) {
      const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
      const bundled = new Set<string>(pkg.bundleDependencies ?? pkg.bundledDependencies ?? []);
      const deps = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
      return { name, version: pkg.version, dir: pkgDir, jsiiDependencies: deps.filter((d) => !bundled.has(d)) };
    }
    if (dir === path.dirname(dir)) throw new Error(`${name} is not installed (looked up from ${fromDir})`);
  }
}

/**
 * Every jsii assembly `root` depends on, dependencies first: the order in which a binding's packages
 * load them (jsii only accepts jsii modules as non-bundled dependencies, so each of these has one).
 */
function dependencyClosure(root: { dir: string; jsiiDependencies: string[] }): InstalledPackage[] {
  const order: InstalledPackage[] = [];
  const visit = (name: string, fromDir: string): void => {
    if (order.some((p) => p.name === name)) return;
    const pkg = installedPackage(name, fromDir);
    for (const dep of pkg.jsiiDependencies) visit(dep, pkg.dir);
    order.push(pkg);
  };
  for (const dep of root.jsiiDependencies) visit(dep, root.dir);
  return order;
}

/** The registry's tarball of an installed (so locked) package, as the bindings' packages embed it. */
function registryTarball({ name, version, dir: pkgDir }: InstalledPackage): Tarball {
  const file = path.join(TARBALL_CACHE, `${name.replace('/', '+')}@${version}.tgz`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(TARBALL_CACHE, { recursive: true });
    // Packed into a private folder and renamed into place, so an interrupted run leaves no partial file.
    const staging = fs.mkdtempSync(path.join(TARBALL_CACHE, '.staging-'));
    try {
      const out = execFileSync('npm', ['pack', `${name}@${version}`, '--prefer-offline', '--json', '--pack-destination', staging], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const [packed] = JSON.parse(out) as Array<{ filename: string; integrity: string }>;
      const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { integrity?: string }> };
      const locked = lock.packages[path.relative(ROOT, pkgDir).split(path.sep).join('/')]?.integrity;
      if (packed.integrity !== locked) throw new Error(`${name}@${version}: the registry's tarball is ${packed.integrity}, the lockfile has ${locked}`);
      fs.renameSync(path.join(staging, packed.filename), file);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  return { name, version, tarball: file };
}

/** This library's tarball exactly as jsii-pacmak embeds it in the Python, Java, .NET and Go packages. */
function libraryTarball(): Tarball {
  const file = path.join(ROOT, PKG.jsii.outdir, 'js', `${LIB}@${PKG.version}.jsii.tgz`);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
  return { name: LIB, version: PKG.version, tarball: file };
}

type ObjRef = { '$jsii.byref': string; '$jsii.interfaces'?: string[] };
interface Callback {
  cbid: string;
  cookie?: string;
  invoke?: { objref: ObjRef; method: string; args?: unknown[] };
}
type CallbackHandler = (callback: Callback) => unknown;

/** A struct argument, serialized as the bindings serialize data types. */
function struct(fqn: string, data: Record<string, unknown>): unknown {
  return { '$jsii.struct': { fqn, data } };
}

/** One @jsii/runtime child process, spoken to as the generated bindings speak to it. */
class JsiiRuntimeProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly messages: AsyncIterator<string>;
  private readonly stderr: string[] = [];
  private readonly exit: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [RUNTIME_BIN], { stdio: 'pipe', env });
    this.exit = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    // A write after the runtime died fails here; the next read reports the exit and the runtime's stderr.
    this.child.stdin.on('error', () => {});
    this.messages = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    // The runtime forwards its kernel process's stdout and stderr here, base64 in JSON lines.
    readline.createInterface({ input: this.child.stderr }).on('line', (line) => {
      try {
        const wrapped = JSON.parse(line) as { stdout?: string; stderr?: string };
        this.stderr.push(Buffer.from(wrapped.stderr ?? wrapped.stdout ?? '', 'base64').toString('utf8'));
      } catch {
        this.stderr.push(line);
      }
    });
  }

  /** The greeting the runtime sends before reading any request. */
  async hello(): Promise<string> {
    return ((await this.read()) as { hello: string }).hello;
  }

  /**
   * Sends one request and answers the callbacks the kernel makes while serving it (a method that a
   * host object overrides), until the request's own answer arrives.
   */
  async request(req: Record<string, unknown>, onCallback?: CallbackHandler): Promise<any> {
    this.write(req);
    for (;;) {
      const msg = (await this.read()) as { ok?: unknown; error?: string; stack?: string; callback?: Callback };
      if ('ok' in msg) return msg.ok;
      if ('error' in msg) throw new Error(`${String(req.api)}: ${msg.error}`);
      if (msg.callback) {
        const { cbid } = msg.callback;
        try {
          if (!onCallback) throw new Error(`no handler for callback ${JSON.stringify(msg.callback)}`);
          this.write({ complete: { cbid, result: onCallback(msg.callback) } });
        } catch (e) {
          this.write({ complete: { cbid, err: e instanceof Error ? e.message : String(e) } });
        }
        continue;
      }
      throw new Error(`unexpected message from the runtime: ${JSON.stringify(msg)}`);
    }
  }

  create(fqn: string, args: unknown[] = [], extra: { interfaces?: string[]; overrides?: Array<{ method: string }> } = {}): Promise<ObjRef> {
    return this.request({ api: 'create', fqn, args, ...extra });
  }

  async invoke(objref: ObjRef, method: string, args: unknown[] = [], onCallback?: CallbackHandler): Promise<any> {
    return (await this.request({ api: 'invoke', objref, method, args }, onCallback)).result;
  }

  async sinvoke(fqn: string, method: string, args: unknown[] = []): Promise<any> {
    return (await this.request({ api: 'sinvoke', fqn, method, args })).result;
  }

  async get(objref: ObjRef, property: string): Promise<any> {
    return (await this.request({ api: 'get', objref, property })).value;
  }

  /** Asks the runtime to exit, as a binding does when its host process ends; resolves to the exit code. */
  async close(): Promise<number | null> {
    if (this.child.exitCode === null) {
      this.write({ exit: 0 });
      this.child.stdin.end();
    }
    const timer = setTimeout(() => this.child.kill(), 10_000);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  private write(msg: unknown): void {
    this.child.stdin.write(`${JSON.stringify(msg)}\n`);
  }

  private async read(): Promise<unknown> {
    const next = await this.messages.next();
    if (next.done) throw new Error(`@jsii/runtime exited (code ${await this.exit}):\n${this.stderr.join('')}`);
    return JSON.parse(next.value);
  }
}

describe('the jsii assembly, driven through @jsii/runtime as the Python, Java and .NET bindings drive it', () => {
  let runtime: JsiiRuntimeProcess;
  let hello: string;
  const loaded = new Map<string, { assembly: string; types: number }>();

  beforeAll(async () => {
    const tarballs = [...dependencyClosure({ dir: ROOT, jsiiDependencies: Object.keys(PKG.peerDependencies) }).map(registryTarball), libraryTarball()];
    // The kernel's own cache of extracted packages is off: it would keep a ~35 MB copy of every
    // library build (it is keyed by the tarball's digest) and the runtime exits before pruning it.
    // Extracting into the kernel's temp folder, which it removes on exit, costs a few seconds.
    runtime = new JsiiRuntimeProcess({ ...process.env, JSII_RUNTIME_PACKAGE_CACHE: 'disabled' });
    hello = await runtime.hello();
    for (const t of tarballs) loaded.set(t.name, await runtime.request({ api: 'load', ...t }));
  }, 180_000);

  afterAll(async () => {
    if (runtime) expect(await runtime.close()).toBe(0);
  });

  it('loads the library with the names the generated packages use', async () => {
    expect(hello).toBe(`@jsii/runtime@${RUNTIME.version}`);
    expect(loaded.get(LIB)).toEqual({ assembly: LIB, types: expect.any(Number) });
    expect(loaded.get(LIB)!.types).toBeGreaterThan(10);
    const { naming } = await runtime.request({ api: 'naming', assembly: LIB });
    expect(naming).toMatchObject({
      python: { module: 'cdk_serverless_inference' },
      java: { package: 'io.github.cdkserverlessinference' },
      dotnet: { namespace: 'CdkServerlessInference' },
      go: { moduleName: 'github.com/cdk-serverless-inference/cdk-serverless-inference-go' },
    });
  });

  it('synthesizes an S3ModelEndpoint serving a model file into a function behind a REST API', async () => {
    const outdir = tempDir('csi-jsii-out-');
    const modelFile = writeModel(logisticRegressionModel().bytes);

    const app = await runtime.create('aws-cdk-lib.App', [struct('aws-cdk-lib.AppProps', { outdir })]);
    const stack = await runtime.create('aws-cdk-lib.Stack', [app, 'Stack']);
    // An aspect implemented by the host: the kernel calls its `visit` back over the pipe for every
    // construct during synthesis, as it does for a Python or Java class implementing IAspect.
    const aspect = await runtime.create('Object', [], { interfaces: ['aws-cdk-lib.IAspect'], overrides: [{ method: 'visit' }] });
    await runtime.invoke(await runtime.sinvoke('aws-cdk-lib.Aspects', 'of', [stack]), 'add', [aspect]);
    const model = await runtime.sinvoke(`${LIB}.ModelSource`, 'fromAsset', [modelFile]);
    await runtime.create(`${LIB}.S3ModelEndpoint`, [stack, 'Endpoint', struct(`${LIB}.S3ModelEndpointProps`, { model })]);

    const visited: string[] = [];
    const assembly = await runtime.invoke(app, 'synth', [], (cb) => {
      expect(cb.invoke).toMatchObject({ objref: aspect, method: 'visit' });
      visited.push((cb.invoke!.args![0] as ObjRef)['$jsii.byref']);
      return undefined;
    });
    const artifact = await runtime.invoke(assembly, 'getStackArtifact', ['Stack']);
    // `template` is typed `any`: the kernel sends it as plain JSON.
    const template = await runtime.get(artifact, 'template');

    const resources = Object.values(template.Resources as Record<string, { Type: string; Properties?: any }>);
    const ofType = (type: string) => resources.filter((r) => r.Type === type);
    expect(ofType('AWS::ApiGateway::RestApi')).toHaveLength(1);
    expect(ofType('AWS::Lambda::Function').length).toBeGreaterThan(0);
    // The inference function runs with the ONNX Runtime layer the package ships prebuilt under assets/.
    expect(ofType('AWS::Lambda::LayerVersion').length).toBeGreaterThan(0);
    expect(ofType('AWS::Lambda::Function').some((f) => (f.Properties.Layers ?? []).length > 0)).toBe(true);
    expect(ofType('AWS::ApiGateway::Method').some((m) => m.Properties.Integration?.Type === 'AWS_PROXY')).toBe(true);

    // The model file the host named was read and staged into the cloud assembly.
    const modelBytes = fs.readFileSync(modelFile);
    const staged = fs.readdirSync(outdir).filter((f) => f.startsWith('asset.') && fs.statSync(path.join(outdir, f)).isFile());
    expect(staged.some((f) => fs.readFileSync(path.join(outdir, f)).equals(modelBytes))).toBe(true);

    expect(visited.some((ref) => ref.startsWith('aws-cdk-lib.aws_lambda.CfnFunction@'))).toBe(true);
    expect(visited.some((ref) => ref.startsWith('aws-cdk-lib.aws_apigateway.CfnRestApi@'))).toBe(true);
  });

  it("synthesizes docs/python.md's app: an S3ModelEndpoint with hooks from a .ts file beside it", async () => {
    // The app's directory as a Python project has it: app.py (here, the calls below, which mirror
    // it), hooks/hooks.ts (the page's own file) and model/, with no package.json or node_modules.
    const project = tempDir('csi-jsii-python-app-');
    const [hooksFile] = extractExamples(fs.readFileSync(path.join(ROOT, 'docs', 'python.md'), 'utf8'));
    fs.mkdirSync(path.join(project, 'hooks'));
    fs.writeFileSync(path.join(project, 'hooks', 'hooks.ts'), hooksFile.code);
    const modelFile = writeModel(logisticRegressionModel().bytes, 'iris.onnx');
    const outdir = tempDir('csi-jsii-out-');

    const app = await runtime.create('aws-cdk-lib.App', [struct('aws-cdk-lib.AppProps', { outdir })]);
    const stack = await runtime.create('aws-cdk-lib.Stack', [app, 'IrisEndpoint']);
    const endpoint = await runtime.create(`${LIB}.S3ModelEndpoint`, [
      stack,
      'Iris',
      struct(`${LIB}.S3ModelEndpointProps`, {
        model: await runtime.sinvoke(`${LIB}.ModelSource`, 'fromAsset', [modelFile]),
        modelName: 'iris',
        memorySize: 1769,
        hooks: await runtime.sinvoke(`${LIB}.HandlerHooks`, 'fromEntry', [path.join(project, 'hooks', 'hooks.ts')]),
        api: struct(`${LIB}.InferenceApiOptions`, { authorization: await runtime.sinvoke(`${LIB}.InferenceApiAuthorization`, 'iam') }),
        warmerOptions: struct(`${LIB}.WarmerOptions`, { concurrency: 1 }),
      }),
    ]);
    const principal = await runtime.create('aws-cdk-lib.aws_iam.AccountRootPrincipal');
    const backend = await runtime.create('aws-cdk-lib.aws_iam.Role', [stack, 'Backend', struct('aws-cdk-lib.aws_iam.RoleProps', { assumedBy: principal })]);
    await runtime.invoke(endpoint, 'grantInvoke', [backend]);
    await runtime.create('aws-cdk-lib.CfnOutput', [stack, 'InferUrl', struct('aws-cdk-lib.CfnOutputProps', { value: await runtime.get(endpoint, 'inferUrl') })]);

    const assembly = await runtime.invoke(app, 'synth');
    const template = await runtime.get(await runtime.invoke(assembly, 'getStackArtifact', ['IrisEndpoint']), 'template');
    expect(template.Outputs.InferUrl).toBeDefined();
    const functions = Object.values(template.Resources as Record<string, { Type: string; Properties: any }>).filter(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.INFERENCE_HOOKS_MODULE,
    );
    expect(functions).toHaveLength(1);
    // The function's code is the handler with the hooks bundled beside it, from the page's file.
    const code = path.join(outdir, `asset.${String(functions[0].Properties.Code.S3Key).replace(/\.zip$/, '')}`);
    const hooksModule = fs.readFileSync(path.join(code, functions[0].Properties.Environment.Variables.INFERENCE_HOOKS_MODULE), 'utf8');
    expect(hooksModule).toContain('sepal_length');
    expect(fs.existsSync(path.join(code, 'index.mjs'))).toBe(true);
  }, 120_000);

  it('reports a file that is not an ONNX model as an error naming it, across the pipe', async () => {
    const badFile = writeModel(notOnnxBytes(), 'not-a-model.onnx');
    const app = await runtime.create('aws-cdk-lib.App', [struct('aws-cdk-lib.AppProps', { outdir: tempDir('csi-jsii-out-') })]);
    const stack = await runtime.create('aws-cdk-lib.Stack', [app, 'Stack']);
    const attempt = async () => {
      const model = await runtime.sinvoke(`${LIB}.ModelSource`, 'fromAsset', [badFile]);
      await runtime.create(`${LIB}.S3ModelEndpoint`, [stack, 'Endpoint', struct(`${LIB}.S3ModelEndpointProps`, { model })]);
      await runtime.invoke(app, 'synth');
    };
    await expect(attempt()).rejects.toThrow(badFile);
  });
});
