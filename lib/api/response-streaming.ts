import type { Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type { InferenceApiOptions } from './inference-api';
import type { InferenceFunction } from '../function/inference-function';

/** Whether an endpoint's API streams the function's answers, which the function must know (it answers differently). */
export function streamsResponses(api: InferenceApiOptions | undefined): boolean {
  return api?.responseTransferMode === apigw.ResponseTransferMode.STREAM;
}

/** A streamed API waits as long as the function may run, unless told otherwise. */
export function apiIntegrationTimeout(api: InferenceApiOptions | undefined, fn: InferenceFunction): Duration | undefined {
  return api?.integrationTimeout ?? (streamsResponses(api) ? fn.function.timeout : undefined);
}
