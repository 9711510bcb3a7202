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
export type { SageMakerProxyOptions } from './sagemaker-proxy-handler';
export type { InferenceHandler, InvocationContext, StreamingInferenceHandler } from './handler';
export type { AfterResponseContext, HookContext, InferenceHooks, PredictionsResponse, SageMakerProxyHooks } from './hooks';
export type { InferResponse, ModelSignature } from './protocol';
export type { OipTensor, TensorSpec } from './tensors';
export type { Datatype } from './datatypes';
export { InferenceError, badRequest } from './errors';
export { ENV } from '../../contract/environment';
export { WARMER_SOURCE } from '../../contract/warmup';
