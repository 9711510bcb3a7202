import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, Errors } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  HandlerHooks,
  LayerModelEndpoint,
  ModelSource,
  SageMakerEndpoint,
  SageMakerIntegration,
  SageMakerProxyEndpoint,
} from '../../../lib';
import { tempDir } from '../../support/handler';
import { assetFolder, newStack, resourceProps, thrown } from '../../support/stacks';

const demo = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
const STREAM = { responseTransferMode: apigw.ResponseTransferMode.STREAM };

/** A hooks project: an entry importing a module of its own, and a file the entry does not import. */
function hooksProject(options: { afterResponse?: boolean; label?: string } = {}): { dir: string; entry: string } {
  const dir = tempDir('csi-hooks-construct-');
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"app","private":true}\n');
  fs.writeFileSync(path.join(dir, 'label.ts'), `export const LABEL = ${JSON.stringify(options.label ?? 'a')};\n`);
  fs.writeFileSync(path.join(dir, 'unrelated.ts'), 'export const X = 1;\n');
  const entry = path.join(dir, 'hooks.ts');
  fs.writeFileSync(
    entry,
    `import { badRequest } from 'cdk-serverless-inference/handler';
import { LABEL } from './label';
export function preprocess(body: any) {
  if (!body) throw badRequest('no body');
  return body;
}
export function postprocess(response: any) {
  return { ...response, label: LABEL };
}
${options.afterResponse === false ? '' : 'export async function afterResponse(response: any) { console.log(JSON.stringify(response)); }\n'}`,
  );
  return { dir, entry };
}

/** The S3 key of a function's code asset: it changes exactly when the code's bytes do. */
function codeKey(entry: string): string {
  const { stack } = newStack();
  const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(entry), api: STREAM });
  return resourceProps(Template.fromStack(stack), endpoint.function).Code.S3Key;
}

describe('hooks bundled by the constructs', () => {
  it('puts the bundled hooks beside the handler and tells the handler where they are', () => {
    const { app, stack } = newStack();
    const { entry } = hooksProject();
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(entry), api: STREAM });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function);
    expect(fn.Environment.Variables).toMatchObject({ INFERENCE_HOOKS_MODULE: 'hooks.mjs', RESPONSE_STREAMING: '1', NODE_OPTIONS: '--enable-source-maps' });
    const folder = assetFolder(app, fn.Code.S3Key);
    const files = fs.readdirSync(folder).sort();
    expect(files).toEqual(expect.arrayContaining(['index.mjs', 'hooks.mjs', 'hooks.mjs.map', 'chunks']));
    expect(files).not.toContain('.staged');
    const hooks = fs.readFileSync(path.join(folder, 'hooks.mjs'), 'utf8');
    expect(hooks).toContain('export {');
    expect(hooks).toMatch(/afterResponse,\s*postprocess,\s*preprocess/);
    expect(hooks).not.toContain('onnxruntime');
    // The source map names the sources relative to the project, so the bytes do not depend on where it is.
    const map = JSON.parse(fs.readFileSync(path.join(folder, 'hooks.mjs.map'), 'utf8'));
    expect(map.sources).toContain('hooks.ts');
    expect(map.sources).toContain('label.ts');
    for (const source of map.sources) expect(path.isAbsolute(source)).toBe(false);
  });

  it('sets neither variable, nor a streaming integration, without hooks', () => {
    const { stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo() });
    const template = Template.fromStack(stack);
    const vars = resourceProps(template, endpoint.function).Environment.Variables;
    expect(vars.INFERENCE_HOOKS_MODULE).toBeUndefined();
    expect(vars.RESPONSE_STREAMING).toBeUndefined();
    expect(vars.NODE_OPTIONS).toBeUndefined();
    for (const m of Object.values(template.findResources('AWS::ApiGateway::Method'))) {
      expect(m.Properties.Integration.ResponseTransferMode).toBeUndefined();
      expect(m.Properties.Integration.TimeoutInMillis).toBeUndefined();
    }
  });

  it("changes the code's hash when the entry or a module it imports changes, and not otherwise", () => {
    const { dir, entry } = hooksProject();
    const first = codeKey(entry);
    expect(codeKey(entry)).toBe(first);
    // Same bytes, new modification times, an unrelated file changed: the same code.
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(entry, later, later);
    fs.writeFileSync(path.join(dir, 'unrelated.ts'), 'export const X = 2;\n');
    expect(codeKey(entry)).toBe(first);
    // A module the entry imports.
    fs.writeFileSync(path.join(dir, 'label.ts'), 'export const LABEL = "b";\n');
    const second = codeKey(entry);
    expect(second).not.toBe(first);
    // The entry itself.
    fs.appendFileSync(entry, '\nexport const note = 1;\n');
    expect(codeKey(entry)).not.toBe(second);
  });

  it('gives the same bytes for the same entry in another folder', () => {
    const a = hooksProject({ label: 'same' });
    const b = hooksProject({ label: 'same' });
    expect(codeKey(a.entry)).toBe(codeKey(b.entry));
  });

  it("fails the synth with esbuild's message, the file and the line, naming the construct", () => {
    const { dir } = hooksProject();
    const entry = path.join(dir, 'broken.ts');
    fs.writeFileSync(entry, "import { LABEL } from './label';\nexport function preprocess(body) {\n  return { label: LABEL, x: };\n}\n");
    const { stack } = newStack();
    const e = thrown(() => new LayerModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(entry) }));
    expect(Errors.isValidationError(e)).toBe(true);
    expect(e.message).toContain(`${entry}:3:`);
    expect(e.message).toContain('does not build');
    expect((e as { constructPath?: string }).constructPath).toBe('Stack/E/Default');
  });

  it('fails the synth on an entry that exports no hook, and on a missing file', () => {
    const { dir } = hooksProject();
    const entry = path.join(dir, 'none.ts');
    fs.writeFileSync(entry, 'export const helper = 1;\n');
    expect(thrown(() => new LayerModelEndpoint(newStack().stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(entry) })).message).toContain(
      'exports none of the hooks (preprocess, postprocess, afterResponse); it exports: helper',
    );
    expect(thrown(() => new LayerModelEndpoint(newStack().stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(path.join(dir, 'missing.ts')) })).message).toContain(
      'is not a file',
    );
  });

  it('refuses afterResponse on a buffered API, explaining the streaming option', () => {
    const { entry } = hooksProject();
    const e = thrown(() => new LayerModelEndpoint(newStack().stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(entry) }));
    expect(Errors.isValidationError(e)).toBe(true);
    expect(e.message).toContain('exports afterResponse');
    expect(e.message).toContain('ResponseTransferMode.STREAM');
  });

  it('takes preprocess and postprocess on a buffered API', () => {
    const { stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(hooksProject({ afterResponse: false }).entry) });
    const vars = resourceProps(Template.fromStack(stack), endpoint.function).Environment.Variables;
    expect(vars.INFERENCE_HOOKS_MODULE).toBe('hooks.mjs');
    expect(vars.RESPONSE_STREAMING).toBeUndefined();
  });

  it('bundles the hooks with the model in the code of a BundledModelEndpoint', () => {
    const { app, stack } = newStack();
    const endpoint = new BundledModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(hooksProject().entry), api: STREAM });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function);
    const folder = assetFolder(app, fn.Code.S3Key);
    expect(fs.existsSync(path.join(folder, 'hooks.mjs'))).toBe(true);
    expect(fs.existsSync(path.join(folder, 'index.mjs'))).toBe(true);
    expect(fs.readdirSync(path.join(folder, 'model')).sort()).toEqual(['demo.onnx', 'demo.ort']);
  });

  it("puts the hooks beside the handler in a generated image's build context", () => {
    const { stack } = newStack();
    const endpoint = new ContainerModelEndpoint(stack, 'E', { model: demo(), hooks: HandlerHooks.fromEntry(hooksProject().entry), api: STREAM });
    const context = endpoint.imageDirectory;
    expect(fs.existsSync(path.join(context, 'handler', 'hooks.mjs'))).toBe(true);
    expect(fs.existsSync(path.join(context, 'handler', '.staged'))).toBe(false);
    expect(resourceProps(Template.fromStack(stack), endpoint.function).Environment.Variables.INFERENCE_HOOKS_MODULE).toBe('hooks.mjs');
  });

  it('bundles the hooks beside the SageMaker proxy handler', () => {
    const { app, stack } = newStack();
    const endpoint = new SageMakerProxyEndpoint(stack, 'E', {
      endpoint: SageMakerEndpoint.fromEndpointName('my-endpoint'),
      proxy: { hooks: HandlerHooks.fromEntry(hooksProject().entry) },
      api: STREAM,
    });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function!);
    const folder = assetFolder(app, fn.Code.S3Key);
    expect(fs.readFileSync(path.join(folder, 'index.mjs'), 'utf8')).toContain('SAGEMAKER');
    expect(fs.existsSync(path.join(folder, 'hooks.mjs'))).toBe(true);
    expect(fn.Environment.Variables.RESPONSE_STREAMING).toBe('1');
    // The call to SageMaker (25 s) and a minute for the hooks.
    expect(fn.Timeout).toBe(85);
  });

  it('refuses proxy code and hooks together', () => {
    const e = thrown(
      () =>
        new SageMakerProxyEndpoint(newStack().stack, 'E', {
          endpoint: SageMakerEndpoint.fromEndpointName('my-endpoint'),
          proxy: { hooks: HandlerHooks.fromEntry(hooksProject({ afterResponse: false }).entry), code: lambda.Code.fromInline('export const handler = 1;') },
        }),
    );
    expect(Errors.isValidationError(e)).toBe(true);
    expect(e.message).toContain('not both');
  });
});

describe('response streaming at the API', () => {
  it("invokes the function with response streaming, for as long as the function's timeout", () => {
    const { stack } = newStack();
    new LayerModelEndpoint(stack, 'E', { model: demo(), api: STREAM, timeout: Duration.minutes(10) });
    const template = Template.fromStack(stack);
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method'));
    expect(methods.length).toBe(9);
    for (const m of methods) {
      expect(m.Properties.Integration.ResponseTransferMode).toBe('STREAM');
      expect(m.Properties.Integration.TimeoutInMillis).toBe(600_000);
      expect(JSON.stringify(m.Properties.Integration.Uri)).toContain('/response-streaming-invocations');
      expect(JSON.stringify(m.Properties.Integration.Uri)).toContain('2021-11-15');
    }
    // Ten minutes is past a regional API's five-minute idle timeout: said at synth.
    Annotations.fromStack(stack).hasWarning('/Stack/E/Api', Match.stringLikeRegexp('ends a stream idle for 5 minutes'));
  });

  it('refuses an integration timeout over 29 s on a buffered API, naming the streaming option', () => {
    const e = thrown(() => new LayerModelEndpoint(newStack().stack, 'E', { model: demo(), api: { integrationTimeout: Duration.seconds(60) } }));
    expect(Errors.isValidationError(e)).toBe(true);
    expect(e.message).toContain("over API Gateway's 29 s limit for a buffered answer");
    expect(e.message).toContain('ResponseTransferMode.STREAM');
  });

  it('refuses a streamed integration timeout over 15 minutes', () => {
    const e = thrown(() => new LayerModelEndpoint(newStack().stack, 'E', { model: demo(), api: { ...STREAM, integrationTimeout: Duration.minutes(16) } }));
    expect(e.message).toContain('15-minute limit');
  });

  it('lets the SageMaker proxy wait longer than 29 s only when streamed', () => {
    const endpoint = SageMakerEndpoint.fromEndpointName('my-endpoint');
    expect(thrown(() => new SageMakerProxyEndpoint(newStack().stack, 'E', { endpoint, invokeTimeout: Duration.seconds(50) })).message).toContain('responseTransferMode STREAM');
    const { stack } = newStack();
    const streamed = new SageMakerProxyEndpoint(stack, 'E', { endpoint, invokeTimeout: Duration.seconds(50), api: STREAM });
    expect(resourceProps(Template.fromStack(stack), streamed.function!).Timeout).toBe(110);
  });

  it('refuses streaming on the direct SageMaker integration, which has no function', () => {
    const e = thrown(
      () =>
        new SageMakerProxyEndpoint(newStack().stack, 'E', { endpoint: SageMakerEndpoint.fromEndpointName('my-endpoint'), integration: SageMakerIntegration.DIRECT, api: STREAM }),
    );
    expect(e.message).toContain('apply to the Lambda proxy');
  });
});
