import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { DEFAULT_MODEL_NAME } from '../../contract/defaults';

/** What an endpoint lets its users choose about its function URL. */
export interface InferenceFunctionUrlOptions {
  /**
   * Who may call the URL. `AWS_IAM`: callers sign requests with SigV4 and need
   * `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the `live` alias (`grantInvoke`
   * gives both). `NONE` makes the model public: anyone with the URL runs inference on your bill.
   * @default lambda.FunctionUrlAuthType.AWS_IAM
   */
  readonly authType?: lambda.FunctionUrlAuthType;

  /**
   * Cross-origin requests the URL answers, for browsers calling it directly. Lambda answers the
   * preflight itself; the function sees none of it.
   * @default - no CORS headers: browsers on other origins cannot call it
   */
  readonly cors?: lambda.FunctionUrlCorsOptions;
}

/** Props of an `InferenceFunctionUrl`. */
export interface InferenceFunctionUrlProps extends InferenceFunctionUrlOptions {
  /** The alias the URL invokes (an endpoint's `live` alias, which each deploy moves). */
  readonly target: lambda.Alias;

  /**
   * Whether the function answers through response streaming: the URL then invokes it with
   * `InvokeWithResponseStream` (`RESPONSE_STREAM`), which lets answers reach 200 MB and requests
   * run up to the function's timeout, and otherwise with `Invoke` (`BUFFERED`, 6 MB answers).
   * It must match the function: a streaming handler's answer read as a buffered one is not an HTTP answer.
   * @default false
   */
  readonly responseStreaming?: boolean;

  /**
   * The model's name in the routes, for `inferUrl`.
   * @default 'model'
   */
  readonly modelName?: string;
}

/**
 * A Lambda function URL in front of an inference function's alias: the cheapest front, with no
 * API Gateway hop or price and no 29-second limit, and with response streaming up to 200 MB. It
 * has no request validation, throttling, WAF or usage plans of its own: the handler validates every
 * request, and reserved concurrency bounds what it may spend.
 */
export class InferenceFunctionUrl extends Construct {
  /** The function URL. */
  public readonly functionUrl: lambda.FunctionUrl;
  /** The URL, ending in `/`. */
  public readonly url: string;
  /** URL of `POST /v2/models/{model}/infer`. */
  public readonly inferUrl: string;
  /** Who may call the URL. */
  public readonly authType: lambda.FunctionUrlAuthType;
  /** How the URL invokes the function. */
  public readonly invokeMode: lambda.InvokeMode;

  private readonly target: lambda.Alias;

  constructor(scope: Construct, id: string, props: InferenceFunctionUrlProps) {
    super(scope, id);
    this.target = props.target;
    this.authType = props.authType ?? lambda.FunctionUrlAuthType.AWS_IAM;
    this.invokeMode = props.responseStreaming ? lambda.InvokeMode.RESPONSE_STREAM : lambda.InvokeMode.BUFFERED;
    this.functionUrl = new lambda.FunctionUrl(this, 'Url', {
      function: props.target,
      authType: this.authType,
      invokeMode: this.invokeMode,
      cors: props.cors,
    });
    // The URL attribute ends in '/' (https://<id>.lambda-url.<region>.on.aws/).
    this.url = this.functionUrl.url;
    this.inferUrl = `${this.url}v2/models/${props.modelName ?? DEFAULT_MODEL_NAME}/infer`;
  }

  /**
   * Lets `grantee` call the URL (with `AWS_IAM`, the default): `lambda:InvokeFunctionUrl`, and
   * `lambda:InvokeFunction` limited to calls through a function URL, on the alias. Function URLs
   * created since October 2025 need both.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.target.grantInvokeUrl(grantee);
  }
}
