// What a users' hooks module imports from `cdk-serverless-inference/handler` when the constructs
// bundle it: the errors a hook throws to answer a 4xx. The module runs beside the prebuilt handler,
// which recognises these errors across the two bundles (see isInferenceError). Types are erased.
export { InferenceError, badRequest } from '../core/protocol/errors';
