// The SageMaker proxy function's entry: the shared handler in front of the endpoint named by
// SAGEMAKER_ENDPOINT_NAME, with the users' hooks module beside it when there is one, buffered or
// streaming (lambda-entry.ts). Top-level await loads the SageMaker client in Lambda's init phase.
import { lambdaHandler } from '../core/lambda-entry';
import { createSageMakerProxyEntry } from '../core/sagemaker-proxy-handler';

export const handler = await lambdaHandler((hooks) => createSageMakerProxyEntry({ hooks }), import.meta.url);
