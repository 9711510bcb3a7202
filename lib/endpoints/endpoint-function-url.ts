import type { InferenceEndpointBase, InferenceEndpointOptions } from './inference-endpoint';
import { InferenceFunctionUrl } from '../api/inference-function-url';
import type { InferenceFunction } from '../function/inference-function';
import { validationError } from '../private/errors';

/**
 * The function URL of `endpoint` (id `FunctionUrl`) on its function's `live` alias, as `options`
 * ask; it invokes the function the way the function answers (streamed or buffered).
 */
export function createEndpointFunctionUrl(endpoint: InferenceEndpointBase, fn: InferenceFunction | undefined, options: InferenceEndpointOptions): InferenceFunctionUrl | undefined {
  if (!options.functionUrl) return undefined;
  if (!fn) throw validationError(endpoint, 'functionUrl needs an inference function, and this endpoint has none (API Gateway calls SageMaker directly)');
  return new InferenceFunctionUrl(endpoint, 'FunctionUrl', {
    ...options.functionUrl,
    target: fn.alias,
    responseStreaming: fn.responseStreaming,
    modelName: fn.modelName,
  });
}
