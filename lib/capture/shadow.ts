import * as fs from 'node:fs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Token } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { DEFAULT_SHADOW_TOLERANCE, SHADOW_AGREEMENT } from '../../contract/capture';
import { ENV } from '../../contract/environment';
import { modelFingerprint } from '../model/local-model';
import type { ModelSource } from '../model/model-source';
import { grantReadModelObject } from '../private/grants';
import { modelVersionFromIdentity } from '../private/model-version';
import { validationError } from '../private/errors';

/** How a shadow's answer is compared with the live one. */
export class ShadowAgreement {
  /**
   * Every output alike: floats within `tolerance` (`|a - b| <= tolerance * max(1, |a|, |b|)`),
   * integers, booleans and strings equal. For regressors, embeddings, any model.
   * @param tolerance @default 0.0001
   */
  public static tolerance(tolerance?: number): ShadowAgreement {
    const t = tolerance ?? DEFAULT_SHADOW_TOLERANCE;
    return new ShadowAgreement(SHADOW_AGREEMENT.TOLERANCE, t);
  }

  /**
   * For classifiers: the largest value of each row of every float output (the last axis) at the
   * same index, whatever the probabilities; integers, booleans and strings equal.
   */
  public static argmax(): ShadowAgreement {
    return new ShadowAgreement(SHADOW_AGREEMENT.ARGMAX, DEFAULT_SHADOW_TOLERANCE);
  }

  private constructor(
    /** `tolerance` or `argmax`. */
    public readonly kind: string,
    /** The tolerance of float outputs (with `tolerance`). */
    public readonly floatTolerance: number,
  ) {}
}

/** How the shadow runs. */
export enum ShadowMode {
  /**
   * In the live function's invocation, once the answer is sent (response streaming): no second
   * function, no second cold start, no payload to pass on; the invocation is billed for the
   * shadow's time too, and the function's memory holds both models.
   */
  SAME_INVOCATION = 'SAME_INVOCATION',
  /**
   * In a shadow function of its own, which the live function invokes asynchronously once the
   * answer is sent, with the request, the live answer and its capture record (at most 1 MB: a
   * larger one is counted as a shadow failure). For a candidate much bigger or slower than the live
   * model: its memory, time and cold starts are its own. The shadow function has its own metrics
   * (`shadowFunction`), and asynchronous invocations are not retried.
   */
  SHADOW_FUNCTION = 'SHADOW_FUNCTION',
}

/** A candidate model run on a sampled copy of live requests after each answer is sent. */
export interface ShadowOptions {
  /** The candidate: another version of the model, or another model with the same inputs. */
  readonly model: ModelSource;

  /**
   * The candidate's version, in the capture records.
   * @default - the first 16 hex digits of a local model's content hash, or its pinned S3 version, else 'shadow'
   */
  readonly modelVersion?: string;

  /**
   * The share of infer requests the candidate runs on, in percent (0 to 100, fractions allowed).
   * Each is captured, with both answers and how they compared.
   * @default 100
   */
  readonly samplingPercentage?: number;

  /**
   * How its answers are compared with the live ones: the `ShadowAgreement` metric.
   * @default ShadowAgreement.tolerance(0.0001)
   */
  readonly agreement?: ShadowAgreement;

  /**
   * How the shadow runs.
   * @default ShadowMode.SAME_INVOCATION
   */
  readonly mode?: ShadowMode;
}

/**
 * The environment that gives the handler its shadow, with the grants it needs: the candidate is
 * always fetched from S3 at cold start (a local file goes up as an asset), into /tmp beside the
 * live model, once the live model is loaded.
 */
export function bindShadow(scope: Construct, role: iam.IRole, options: ShadowOptions): { environment: { [name: string]: string }; sizeBytes?: number } {
  const sampling = shadowSampling(scope, options);
  const source = options.model.bind();
  let location: { [name: string]: string };
  let identity: string | undefined;
  const sizeBytes = source.localPath ? fs.statSync(source.localPath).size : source.size?.toBytes();
  if (source.localPath) {
    const asset = new s3assets.Asset(scope, 'ShadowModelAsset', { path: source.localPath });
    grantReadModelObject(role, asset.bucket, asset.s3ObjectKey, undefined);
    location = { [ENV.SHADOW_MODEL_S3_URI]: `s3://${asset.s3BucketName}/${asset.s3ObjectKey}` };
    identity = modelFingerprint(source.localPath);
  } else {
    grantReadModelObject(role, source.bucket!, source.objectKey!, source.objectVersion);
    location = {
      [ENV.SHADOW_MODEL_S3_URI]: `s3://${source.bucket!.bucketName}/${source.objectKey}`,
      ...(source.objectVersion ? { [ENV.SHADOW_MODEL_S3_VERSION_ID]: source.objectVersion } : {}),
    };
    identity = source.objectVersion;
  }
  const environment = {
    ...location,
    [ENV.SHADOW_MODEL_VERSION]: options.modelVersion ?? (identity ? modelVersionFromIdentity(identity) : 'shadow'),
    [ENV.SHADOW_SAMPLING_PERCENT]: String(sampling),
    ...shadowComparison(scope, options),
  };
  return { environment, sizeBytes };
}

/** `shadow.samplingPercentage`, checked. */
export function shadowSampling(scope: Construct, options: ShadowOptions): number {
  const sampling = options.samplingPercentage ?? 100;
  if (!Token.isUnresolved(sampling) && !(sampling >= 0 && sampling <= 100)) {
    throw validationError(scope, `shadow.samplingPercentage must be between 0 and 100, got: ${sampling}`);
  }
  return sampling;
}

/** The environment that says how answers are compared, wherever the candidate runs. */
export function shadowComparison(scope: Construct, options: ShadowOptions): { [name: string]: string } {
  const agreement = options.agreement ?? ShadowAgreement.tolerance();
  if (!Token.isUnresolved(agreement.floatTolerance) && !(agreement.floatTolerance >= 0)) {
    throw validationError(scope, `shadow.agreement: the tolerance must be a number of at least 0, got: ${agreement.floatTolerance}`);
  }
  return {
    [ENV.SHADOW_AGREEMENT]: agreement.kind,
    ...(agreement.kind === SHADOW_AGREEMENT.TOLERANCE ? { [ENV.SHADOW_TOLERANCE]: String(agreement.floatTolerance) } : {}),
  };
}
