/**
 * The shared inference handler, for a user's own entry file with pre- and post-processing hooks:
 *
 *   import { createInferenceHandler } from 'cdk-serverless-inference/handler';
 *   export const handler = await createInferenceHandler({ hooks: { preprocess, postprocess } });
 *
 * `createSageMakerProxyHandler` does the same in front of a SageMaker endpoint.
 */
export { createInferenceHandler } from './onnx-handler';
export type { InferenceHandlerOptions } from './onnx-handler';
export { createSageMakerProxyHandler } from './sagemaker-proxy-handler';
export { createModelRepositoryEntry, createModelRepositoryHandler } from './repository-handler';
export type { RepositoryEntry } from './repository-handler';
export type { SageMakerProxyOptions } from './sagemaker-proxy-handler';
export type { InferenceHandler, InvocationContext, StreamingInferenceHandler } from './handler';
export type { AfterResponseContext, HookContext, InferenceHooks, PredictionsResponse, SageMakerProxyHooks } from './hooks/hooks';
export type { InferResponse, ModelSignature } from './protocol/protocol';
export type { TensorSpec } from './protocol/tensors';
export type { Datatype, OipTensor } from './protocol/datatypes';
export { InferenceError, badRequest } from './protocol/errors';
export { ENV } from '../../contract/environment';
export { WARMER_SOURCE } from '../../contract/warmup';
