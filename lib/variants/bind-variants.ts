import { Size, Stack, Token } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import { VARIANT_LOCATION_ENV, VARIANT_NAME_PATTERN, type VariantSpec } from '../../contract/variants';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import type { ModelPackagingBindOptions, ModelPackagingConfig } from '../packaging/model-packaging';
import { validationError } from '../private/errors';
import { modelVersionFromIdentity } from '../private/model-version';
import type { ModelVariantsOptions } from './model-variants';

/** What the variants add to the function's packaging. */
export interface BoundVariants {
  /** The packaging's configuration with the variants' environment, layers, /tmp and dependencies added. */
  readonly packaging: ModelPackagingConfig;
  /** The variants' models' bytes, where known at synth: memory holds them beside the primary. */
  readonly extraModelBytes: number;
  /** The variants' names, the primary's first. */
  readonly names: string[];
}

/** SageMaker's limit of production variants per endpoint, kept here for the same reason: each is a model in memory. */
const MAX_VARIANTS = 10;

/** An HTTP header name (RFC 9110's token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Binds each variant's packaging under `scope` (ids `Variants/<name>`) and merges what it returns
 * into the primary packaging's configuration: MODEL_VARIANTS and MODEL_VARIANT_HEADER for the
 * handler, the variants' layers, /tmp, dependencies. Misuse fails naming `variants` and the limit.
 */
export function bindVariants(scope: Construct, primary: ModelPackagingConfig, options: ModelVariantsOptions, bindOptions: ModelPackagingBindOptions): BoundVariants {
  const primaryName = options.primaryName ?? 'primary';
  const all = [
    { name: primaryName, weight: options.primaryWeight, prop: 'variants.primaryWeight' },
    ...options.variants.map((v, i) => ({ name: v.name, weight: v.weight, prop: `variants.variants[${i}].weight` })),
  ];
  if (options.variants.length < 1) throw validationError(scope, 'variants.variants must name at least one variant besides the primary, got: none');
  if (all.length > MAX_VARIANTS)
    throw validationError(scope, `variants: at most ${MAX_VARIANTS} variants, the primary included (each is a model every instance loads), got: ${all.length}`);
  const seen = new Set<string>();
  for (const v of all) {
    if (!Token.isUnresolved(v.name) && !VARIANT_NAME_PATTERN.test(v.name)) {
      throw validationError(scope, `variants: a variant's name must be 1 to 64 letters, digits, '.', '_' or '-', got: '${v.name}'`);
    }
    if (seen.has(v.name)) throw validationError(scope, `variants: the name '${v.name}' is given twice (the primary is '${primaryName}'); names must be unique`);
    seen.add(v.name);
    if (!Token.isUnresolved(v.weight) && !(Number.isFinite(v.weight) && v.weight > 0)) throw validationError(scope, `${v.prop} must be a positive number, got: ${v.weight}`);
  }
  if (options.stickyHeader !== undefined && !HEADER_NAME.test(options.stickyHeader)) {
    throw validationError(scope, `variants.stickyHeader must be an HTTP header name, got: '${options.stickyHeader}'`);
  }
  if (primary.onnxRuntime === false) {
    throw validationError(scope, 'variants: this function runs no ONNX model of its own (a proxy), so it has no variants to serve');
  }

  const holder = new Construct(scope, 'Variants');
  const specs: VariantSpec[] = [{ name: primaryName, weight: options.primaryWeight }];
  const layers: lambda.ILayerVersion[] = [];
  const codeParts = [...(primary.codeParts ?? [])];
  const dependencies = [...(primary.dependencies ?? [])];
  let tmpBytes = primary.tmpSize?.toBytes() ?? 0;
  let extraModelBytes = 0;
  const paths = new Map<string, string>();
  const primaryPath = primary.environment[ENV.MODEL_PATH];
  if (primaryPath && !Token.isUnresolved(primaryPath)) paths.set(primaryPath, primaryName);

  options.variants.forEach((variant, i) => {
    const prop = `variants.variants[${i}].packaging`;
    const config = variant.packaging.bind(new Construct(holder, variant.name), { ...bindOptions, hooks: undefined });
    for (const [what, present] of [
      ['its own function code', config.code !== undefined],
      ['a VPC', config.vpc !== undefined],
      ['a file system', config.filesystem !== undefined],
    ] as const) {
      if (present)
        throw validationError(
          scope,
          `${prop}: variant '${variant.name}' brings ${what}, which one function cannot take beside its own model: use S3ModelPackaging or LayerModelPackaging`,
        );
    }
    if (config.layers && config.layers.length > 0 && primary.image === true) {
      throw validationError(
        scope,
        `${prop}: variant '${variant.name}' comes in a layer, and the endpoint's function is a container image, which takes no layers: use S3ModelPackaging`,
      );
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(config.environment)) {
      if (!VARIANT_LOCATION_ENV.includes(k))
        throw validationError(scope, `${prop}: variant '${variant.name}' sets ${k}; a variant may set only ${VARIANT_LOCATION_ENV.join(', ')}`);
      env[k] = v;
    }
    const path = env[ENV.MODEL_PATH];
    if (path && !Token.isUnresolved(path)) {
      const other = paths.get(path);
      if (other !== undefined) throw validationError(scope, `${prop}: variants '${other}' and '${variant.name}' both read ${path}: give their model files different names`);
      paths.set(path, variant.name);
    }
    checkSameInputs(scope, prop, primaryName, primary.modelInfo, variant.name, config.modelInfo);
    const version = variant.modelVersion ?? (config.modelIdentity ? modelVersionFromIdentity(config.modelIdentity) : variant.name);
    specs.push({ name: variant.name, weight: variant.weight, version, env });
    layers.push(...(config.layers ?? []));
    codeParts.push(...(config.codeParts ?? []).map((p) => ({ name: `variant '${variant.name}': ${p.name}`, sizeBytes: p.sizeBytes })));
    dependencies.push(...(config.dependencies ?? []));
    tmpBytes += config.tmpSize?.toBytes() ?? 0;
    extraModelBytes += config.modelInfo?.sizeBytes ?? config.modelSize?.toBytes() ?? 0;
  });

  return {
    packaging: {
      ...primary,
      environment: {
        ...primary.environment,
        [ENV.MODEL_VARIANTS]: Stack.of(scope).toJsonString(specs),
        ...(options.stickyHeader ? { [ENV.MODEL_VARIANT_HEADER]: options.stickyHeader } : {}),
      },
      layers: [...(primary.layers ?? []), ...layers],
      codeParts: codeParts.length > 0 ? codeParts : undefined,
      dependencies,
      tmpSize: tmpBytes > 0 ? Size.bytes(tmpBytes) : undefined,
    },
    extraModelBytes,
    names: specs.map((s) => s.name),
  };
}

/** Every variant answers the same requests: the same input names, datatypes and fixed dimensions, where both signatures are known at synth. */
function checkSameInputs(scope: Construct, prop: string, primaryName: string, primary: OnnxModelInfo | undefined, name: string, info: OnnxModelInfo | undefined): void {
  if (!primary || !info) return;
  const describe = (m: OnnxModelInfo) =>
    m.inputs
      .map((t) => `${t.name}: ${t.datatype}[${t.shape.map((d) => (d >= 0 ? d : '?')).join(',')}]`)
      .sort()
      .join(', ');
  const a = describe(primary);
  const b = describe(info);
  if (a !== b) {
    throw validationError(scope, `${prop}: variant '${name}' takes inputs ${b}, and '${primaryName}' takes ${a}: every variant must answer the same requests`);
  }
}
