/**
 * The `variants` prop: what a function with A/B variants synthesizes, and each misuse refused at
 * synth naming the construct, the prop and the limit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Size, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BundledModelPackaging, LayerModelEndpoint, LayerModelPackaging, ModelSource, type ModelVariantsOptions, S3ModelEndpoint, S3ModelPackaging } from '../../../lib';
import { mlpModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { assetFolder, newStack, ref, resourceProps, thrown } from '../../support/stacks';

/** A second version of the demo model: the same inputs, other weights. */
const candidateFile = writeModel(mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 7, label: true }).bytes, 'candidate.onnx');
const demo = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
const candidate = () => ModelSource.fromAsset(candidateFile);

/** The function's MODEL_VARIANTS, resolved: tokens (bucket names) left as they are in the template. */
function variantsOf(stack: Stack, fn: Record<string, any>): any[] {
  const value = stack.resolve(fn.Environment.Variables.MODEL_VARIANTS);
  const text = typeof value === 'string' ? value : value['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : 'TOKEN')).join('');
  return JSON.parse(text);
}

describe('variants', () => {
  it('serves a variant from S3 beside the endpoint own model: MODEL_VARIANTS, the sticky header, the grant and /tmp', () => {
    const { stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', {
      model: demo(),
      variants: {
        primaryName: 'control',
        primaryWeight: 90,
        variants: [{ name: 'candidate', weight: 10, packaging: new S3ModelPackaging({ model: candidate() }) }],
        stickyHeader: 'X-User-Id',
      },
    });
    const template = Template.fromStack(stack);
    const fn = resourceProps(template, endpoint.function);
    expect(fn.Environment.Variables.MODEL_VARIANT_HEADER).toBe('X-User-Id');
    expect(fn.Environment.Variables.MODEL_PATH).toBe('/opt/models/demo.onnx');
    const variants = variantsOf(stack, fn);
    expect(variants.map((v) => [v.name, v.weight])).toEqual([
      ['control', 90],
      ['candidate', 10],
    ]);
    expect(variants[0].env).toBeUndefined();
    expect(variants[1].version).toMatch(/^[0-9a-f]{16}$/);
    expect(variants[1].version).not.toBe(endpoint.modelVersion);
    for (const k of Object.keys(variants[1].env)) expect(['MODEL_S3_URI', 'MODEL_PRECOMPILED_S3_URI']).toContain(k);
    expect(variants[1].env.MODEL_S3_URI).toMatch(/^s3:\/\/TOKEN\/models\/model\/candidate-[0-9a-f]{16}\.onnx$/);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).toContain('s3:GetObject');
    expect(endpoint.inferenceFunction.variantNames).toEqual(['control', 'candidate']);
  });

  it('serves a variant from a layer of its own, and names its version as given', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'E', {
      model: demo(),
      variants: { primaryWeight: 1, variants: [{ name: 'b', weight: 1, modelVersion: '2', packaging: new LayerModelPackaging({ model: candidate() }) }] },
    });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function);
    expect(fn.Layers).toHaveLength(2);
    expect(fn.Layers[0]).toEqual(ref(endpoint.onnxRuntimeLayer!));
    const variants = variantsOf(stack, fn);
    expect(variants.map((v) => v.name)).toEqual(['primary', 'b']);
    expect(variants[1]).toMatchObject({ version: '2', env: { MODEL_PATH: '/opt/models/candidate.onnx' } });
    expect(fn.Environment.Variables.MODEL_VARIANT_HEADER).toBeUndefined();
  });

  it('sizes /tmp and warns on memory for every variant, which every instance fetches and loads', () => {
    const make = (withVariant: boolean) => {
      const { stack } = newStack();
      const bucket = new s3.Bucket(stack, 'Models');
      const endpoint = new LayerModelEndpoint(stack, 'E', {
        model: demo(),
        memorySize: 512,
        variants: withVariant
          ? {
              primaryWeight: 1,
              variants: [{ name: 'big', weight: 1, packaging: new S3ModelPackaging({ model: ModelSource.fromBucket(bucket, 'big.onnx', { size: Size.mebibytes(300) }) }) }],
            }
          : undefined,
      });
      return { stack, fn: resourceProps(Template.fromStack(stack), endpoint.function) };
    };
    const alone = make(false);
    expect(alone.fn.EphemeralStorage).toBeUndefined();
    expect(Annotations.fromStack(alone.stack).findWarning('*', Match.stringLikeRegexp('memorySize'))).toEqual([]);
    const both = make(true);
    expect(both.fn.EphemeralStorage.Size).toBeGreaterThan(300);
    const [warning] = Annotations.fromStack(both.stack).findWarning('*', Match.stringLikeRegexp('memorySize is 512 MiB'));
    expect(warning.entry.data).toMatch(/needs about 7\d\d MiB/);
  });

  const refusals: Array<[string, (stack: Stack) => ModelVariantsOptions | undefined, RegExp, Record<string, unknown>?]> = [
    ['no variant besides the primary', () => ({ primaryWeight: 1, variants: [] }), /variants\.variants must name at least one variant besides the primary, got: none/],
    [
      'a zero weight',
      () => ({ primaryWeight: 1, variants: [{ name: 'b', weight: 0, packaging: new S3ModelPackaging({ model: candidate() }) }] }),
      /variants\.variants\[0\]\.weight must be a positive number, got: 0/,
    ],
    [
      'a negative primary weight',
      () => ({ primaryWeight: -1, variants: [{ name: 'b', weight: 1, packaging: new S3ModelPackaging({ model: candidate() }) }] }),
      /variants\.primaryWeight must be a positive number, got: -1/,
    ],
    [
      'the primary name twice',
      () => ({ primaryWeight: 1, variants: [{ name: 'primary', weight: 1, packaging: new S3ModelPackaging({ model: candidate() }) }] }),
      /the name 'primary' is given twice/,
    ],
    [
      'a name with a space',
      () => ({ primaryWeight: 1, variants: [{ name: 'a b', weight: 1, packaging: new S3ModelPackaging({ model: candidate() }) }] }),
      /a variant's name must be 1 to 64 letters.*got: 'a b'/,
    ],
    [
      'eleven variants',
      () => ({ primaryWeight: 1, variants: Array.from({ length: 10 }, (_, i) => ({ name: `v${i}`, weight: 1, packaging: new S3ModelPackaging({ model: candidate() }) })) }),
      /at most 10 variants, the primary included.*got: 11/,
    ],
    [
      'a header name with a space',
      () => ({ primaryWeight: 1, stickyHeader: 'x user', variants: [{ name: 'b', weight: 1, packaging: new S3ModelPackaging({ model: candidate() }) }] }),
      /variants\.stickyHeader must be an HTTP header name, got: 'x user'/,
    ],
    [
      'a bundled variant',
      () => ({ primaryWeight: 1, variants: [{ name: 'b', weight: 1, packaging: new BundledModelPackaging({ model: candidate() }) }] }),
      /variants\.variants\[0\]\.packaging: variant 'b' brings its own function code.*S3ModelPackaging or LayerModelPackaging/,
    ],
    [
      'a variant that reads the same file as the primary',
      () => ({ primaryWeight: 1, variants: [{ name: 'b', weight: 1, packaging: new LayerModelPackaging({ model: demo() }) }] }),
      /variants 'primary' and 'b' both read \/opt\/models\/demo\.onnx: give their model files different names/,
    ],
    [
      'a variant with other inputs',
      () => ({
        primaryWeight: 1,
        variants: [{ name: 'wide', weight: 1, packaging: new S3ModelPackaging({ model: ModelSource.fromAsset(writeModel(mlpModel({ inputs: 5, seed: 1 }).bytes, 'wide.onnx')) }) }],
      }),
      /variant 'wide' takes inputs input: FP32\[\?,5\], and 'primary' takes input: FP32\[\?,4\]: every variant must answer the same requests/,
    ],
  ];

  it.each(refusals)('refuses %s', (_what, variants, message) => {
    const { stack } = newStack();
    const e = thrown(() => new LayerModelEndpoint(stack, 'E', { model: demo(), variants: variants(stack) }));
    expect(e.message).toMatch(message);
    expect(e.constructPath).toMatch(/^Stack\/E/);
  });
});

describe('variants with a gradual rollout', () => {
  const sampleRequest = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, -1.2, 3.3, 0.7] }] };
  const variants = (): ModelVariantsOptions => ({ primaryWeight: 1, variants: [{ name: 'b', weight: 1, packaging: new LayerModelPackaging({ model: candidate() }) }] });

  it('rolls the whole set out as one version, its check sending the sample to each variant', () => {
    const { app, stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo(), variants: variants(), rollout: { sampleRequest, expectedOutputs: ['probabilities', 'label'] } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 1);
    const check = resourceProps(template, endpoint.rollout!.preTrafficCheck!);
    const files = JSON.parse(check.Environment.Variables.VARIANT_SAMPLE_FILES);
    expect(Object.keys(files)).toEqual(['primary', 'b']);
    const code = assetFolder(app, check.Code.S3Key);
    for (const [name, file] of Object.entries(files)) {
      expect(JSON.parse(fs.readFileSync(path.join(code, file as string), 'utf8'))).toEqual({ ...sampleRequest, parameters: { variant: name } });
    }
  });

  it('refuses rollout.expectedAnswer, which different models cannot all be held to', () => {
    const { stack } = newStack();
    const e = thrown(
      () => new LayerModelEndpoint(stack, 'E', { model: demo(), variants: variants(), rollout: { sampleRequest, expectedAnswer: { outputs: [{ name: 'label', data: [1] }] } } }),
    );
    expect(e.message).toMatch(/rollout\.expectedAnswer cannot be used with variants: the pre-traffic check sends the sample to every variant/);
    expect(e.constructPath).toBe('Stack/E');
  });
});

describe('variant metrics', () => {
  const make = () => {
    const { stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', {
      model: demo(),
      monitoring: {},
      variants: { primaryName: 'control', primaryWeight: 1, variants: [{ name: 'candidate', weight: 1, packaging: new LayerModelPackaging({ model: candidate() }) }] },
    });
    return { stack, endpoint };
  };

  it("reads each variant's figures by the variant dimension the handler writes", () => {
    const { stack, endpoint } = make();
    const m = stack.resolve(endpoint.inferenceFunction.metricVariantErrors('candidate').toMetricConfig().metricStat);
    expect(m.metricName).toBe('VariantErrors');
    expect(m.namespace).toBe('CdkServerlessInference');
    expect(Object.fromEntries(m.dimensions.map((d: any) => [d.name, d.value]))).toMatchObject({ model: 'model', variant: 'candidate' });
    expect(endpoint.inferenceFunction.metricVariantInferenceTime('control').statistic).toBe('p99');
    expect(thrown(() => endpoint.inferenceFunction.metricVariantRequests('other')).message).toMatch(
      /'other' is not a variant of this function \(its variants are control, candidate\)/,
    );
  });

  it('puts a row of the variants side by side on the dashboard', () => {
    const { stack } = make();
    const body = JSON.stringify(Template.fromStack(stack).findResources('AWS::CloudWatch::Dashboard'));
    for (const title of ['Requests by variant', 'Error rate by variant (%)', 'Inference time by variant (ms, p99)']) expect(body).toContain(title);
    for (const name of ['control', 'candidate']) expect(body).toContain(`\\"variant\\",\\"${name}\\"`);
  });

  it('leaves the dashboard of an endpoint without variants as it was', () => {
    const { stack } = newStack();
    new LayerModelEndpoint(stack, 'E', { model: demo(), monitoring: {} });
    expect(JSON.stringify(Template.fromStack(stack).findResources('AWS::CloudWatch::Dashboard'))).not.toContain('by variant');
  });
});
