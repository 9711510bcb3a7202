import { Token } from 'aws-cdk-lib';
import type { InferenceEndpointBase, InferenceEndpointOptions } from './inference-endpoint';
import type { InferenceFunction } from '../function/inference-function';
import { EndpointMonitoring } from '../operations/endpoint-monitoring';
import { GradualRollout } from '../operations/gradual-rollout';
import { Warmer } from '../operations/warmer';
import { validationError } from '../private/errors';
import type { GradualRolloutOptions } from '../operations/gradual-rollout';
import type { ModelVariantsOptions } from '../variants/model-variants';

/** The warmer, alarms, dashboard and rollout around an inference function, as `options` ask. */
export interface EndpointOperations {
  readonly warmer?: Warmer;
  readonly monitoring?: EndpointMonitoring;
  readonly rollout?: GradualRollout;
}

/**
 * Creates the operations of `endpoint` (ids `Warmer`, `Monitoring`, `Rollout`). Without a function
 * only monitoring applies: a warmer or rollout asked for there fails naming the prop.
 */
export function createEndpointOperations(
  endpoint: InferenceEndpointBase,
  fn: InferenceFunction | undefined,
  options: InferenceEndpointOptions & { readonly provisionedConcurrency?: number; readonly reservedConcurrentExecutions?: number; readonly variants?: ModelVariantsOptions },
): EndpointOperations {
  if (options.variants && options.rollout) checkRolloutWithVariants(endpoint, options.rollout);
  if (!fn) {
    for (const prop of ['rollout', 'warmer', 'warmerOptions'] as const) {
      if (options[prop]) throw validationError(endpoint, `${prop} needs an inference function, and this endpoint has none`);
    }
  }
  if (fn?.capacityProvider) {
    for (const prop of ['warmer', 'warmerOptions'] as const) {
      if (options[prop]) throw validationError(endpoint, `${prop} does not apply on Managed Instances: their execution environments stay up`);
    }
  }
  if (options.warmer === false && options.warmerOptions) {
    throw validationError(endpoint, 'warmerOptions configure the warmer, and warmer is false');
  }
  // Options for a warmer ask for one, provisioned instances or not.
  const warmerWanted = options.warmer ?? (options.warmerOptions !== undefined || (options.provisionedConcurrency === undefined && !fn?.capacityProvider));
  const reserved = options.reservedConcurrentExecutions;
  const warmerConcurrency = options.warmerOptions?.concurrency ?? 1;
  if (fn && warmerWanted && reserved !== undefined && reserved > 0 && !Token.isUnresolved(reserved) && warmerConcurrency >= reserved) {
    // Pings that take every reserved instance would throttle the real requests meanwhile.
    throw validationError(
      endpoint,
      `warmerOptions.concurrency (${warmerConcurrency}) must stay below reservedConcurrentExecutions (${reserved}), or the warm-up takes every instance from requests: lower it, or set warmer: false`,
    );
  }
  const warmer = fn && warmerWanted ? new Warmer(endpoint, 'Warmer', { ...options.warmerOptions, target: fn.alias }) : undefined;
  // A rollout brings its own canary alarms; the endpoint's alarms roll back too with rollbackOnEndpointAlarms.
  const monitoring = options.monitoring
    ? new EndpointMonitoring(endpoint, 'Monitoring', {
        ...options.monitoring,
        endpoint,
        inferenceFunction: fn,
        title: `Model ${endpoint.modelName} (${endpoint.node.path})`,
      })
    : undefined;
  const rollout =
    fn && options.rollout
      ? new GradualRollout(endpoint, 'Rollout', {
          ...options.rollout,
          alias: fn.alias,
          version: fn.function.currentVersion,
          endpoint,
          endpointAlarms: Object.values(monitoring?.alarms ?? {}),
          variantNames: fn.variantNames,
        })
      : undefined;
  return { warmer, monitoring, rollout };
}

/**
 * A rollout moves the alias to each new version, every variant in it: CodeDeploy canaries the whole
 * set, and its pre-traffic check sends the sample to each variant. One expected answer cannot hold
 * for variants that are different models.
 */
function checkRolloutWithVariants(endpoint: InferenceEndpointBase, rollout: GradualRolloutOptions): void {
  if (rollout.expectedAnswer !== undefined) {
    throw validationError(
      endpoint,
      'rollout.expectedAnswer cannot be used with variants: the pre-traffic check sends the sample to every variant, and the variants are different models that answer it differently. ' +
        'Keep sampleRequest and expectedOutputs (every variant must have those outputs), and compare the variants by their metrics',
    );
  }
}
