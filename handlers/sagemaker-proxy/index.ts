// The SageMaker proxy function's entry: the shared handler in front of the endpoint named by
// SAGEMAKER_ENDPOINT_NAME. Top-level await loads the SageMaker client in Lambda's init phase.
import { createSageMakerProxyHandler } from '../core/sagemaker-proxy-handler';

export const handler = await createSageMakerProxyHandler();
