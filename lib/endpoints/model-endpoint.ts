import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { InferenceApi } from '../api/inference-api';
import { InferenceEndpointBase, type InferenceEndpointOptions } from './inference-endpoint';
import { InferenceFunction, type InferenceFunctionOptions } from '../function/inference-function';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import { OnnxModel } from '../model/onnx-model';
import type { OnnxRuntimeLayer } from '../runtime/onnxruntime-layer';
import type { EndpointMonitoring } from '../operations/endpoint-monitoring';
import type { GradualRollout } from '../operations/gradual-rollout';
import type { ModelPackaging } from '../packaging/model-packaging';
import { ModelRepositoryPackaging } from '../packaging/model-repository-packaging';
import { createEndpointOperations } from './endpoint-operations';
import { createEndpointFunctionUrl } from './endpoint-function-url';
import type { InferenceFunctionUrl } from '../api/inference-function-url';
import { apiIntegrationTimeout, streamsResponses } from '../api/response-streaming';
import type { Warmer } from '../operations/warmer';

/** What every ONNX model endpoint lets its users choose: its function, its API and its operations. */
export interface ModelEndpointOptions extends InferenceFunctionOptions, InferenceEndpointOptions {}

/** Props of a `ModelEndpoint`: every endpoint's options, and how the model is packaged. */
export interface ModelEndpointProps extends ModelEndpointOptions {
  /** How the function gets its model: `new S3ModelPackaging({ model })`, a layer, an image, EFS... */
  readonly packaging: ModelPackaging;
}

/**
 * An ONNX model served over the Open Inference Protocol: an `InferenceFunction` running the
 * library's handler with the model its packaging provides, an `InferenceApi` in front of the
 * function's `live` alias, a warmer, and optional alarms, dashboard and gradual rollout.
 *
 * The six endpoint classes are this construct with their packaging chosen; use it directly with a
 * packaging of your own.
 */
export class ModelEndpoint extends InferenceEndpointBase implements iam.IGrantable {
  /** The inference function: the function, its role, log group and `live` alias. */
  public readonly inferenceFunction: InferenceFunction;
  /** The function. */
  public readonly function: lambda.Function;
  /** The alias that the API and the warmer call; each deploy that changes the function moves it. */
  public readonly alias: lambda.Alias;
  /** The function's role. */
  public readonly role: iam.IRole;
  /** The function's log group. */
  public readonly logGroup: logs.LogGroup;
  /**
   * The ONNX Runtime layer the function uses (shared by the stack's endpoints); none for a
   * container image, which brings onnxruntime itself.
   */
  public readonly onnxRuntimeLayer?: OnnxRuntimeLayer;
  /** The API in front of the alias. */
  public readonly api: InferenceApi;
  /** URL of the API's stage, ending in `/`. */
  public readonly url: string;
  /** URL of `POST /v2/models/{model}/infer`. */
  public readonly inferUrl: string;
  /** The model's name in the routes. */
  public readonly modelName: string;
  /** The version the API reports for the model: `modelVersion`, or the model's identity. */
  public readonly modelVersion: string;
  /** The model's signature, when it was known at synth. */
  public readonly modelInfo?: OnnxModelInfo;
  /** The warmer, when there is one. */
  public readonly warmer?: Warmer;
  /** Alarms and dashboard, with `monitoring`. */
  public readonly monitoring?: EndpointMonitoring;
  /** The function URL, with `functionUrl`. */
  public readonly functionUrl?: InferenceFunctionUrl;
  /** The gradual rollout, with `rollout`. */
  public readonly rollout?: GradualRollout;
  /** The function's role, as the principal of grants to the function. */
  public readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: ModelEndpointProps) {
    super(scope, id);
    // 'Default' keeps the logical ids that the function, its role, log group and `live` alias had
    // when they were direct children of the endpoint: a replaced alias would collide with the
    // existing `live` one on the next deploy.
    this.inferenceFunction = new InferenceFunction(this, 'Default', { ...props, responseStreaming: streamsResponses(props.api) });
    const fn = this.inferenceFunction;
    this.function = fn.function;
    this.alias = fn.alias;
    this.role = fn.role;
    this.logGroup = fn.logGroup;
    this.onnxRuntimeLayer = fn.onnxRuntimeLayer;
    this.grantPrincipal = fn.grantPrincipal;
    this.modelName = fn.modelName;
    this.modelVersion = fn.modelVersion;
    this.modelInfo = fn.modelInfo;

    this.api = new InferenceApi(this, 'Api', {
      tracingEnabled: props.tracing === lambda.Tracing.ACTIVE,
      ...props.api,
      integrationTimeout: apiIntegrationTimeout(props.api, fn),
      handler: this.alias,
      modelName: this.modelName,
      modelVersion: this.modelVersion,
      requestSchema: OnnxModel.inferRequestSchema(this.modelInfo?.inputs),
      ...(props.packaging instanceof ModelRepositoryPackaging ? { modelRepository: true } : {}),
    });
    this.url = this.api.url;
    this.inferUrl = this.api.inferUrl;

    const operations = createEndpointOperations(this, fn, props);
    this.warmer = operations.warmer;
    this.monitoring = operations.monitoring;
    this.rollout = operations.rollout;
    this.functionUrl = createEndpointFunctionUrl(this, fn, props);
  }

  protected inferenceFunctionOrUndefined(): InferenceFunction | undefined {
    return this.inferenceFunction;
  }
}
