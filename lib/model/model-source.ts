import * as fs from 'node:fs';
import * as path from 'node:path';
import { Size, Token } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { unscopedValidationError } from '../private/errors';
import { type OnnxModelInfo, readOnnxModelInfo } from './onnx-model-info';

/** Where a model source points, resolved for an endpoint. */
export interface ModelSourceConfig {
  /**
   * Absolute path of the model file on this machine, when it is a local file.
   * @default - not a local file
   */
  readonly localPath?: string;
  /**
   * The model's size and signature, read at synth from a local file.
   * @default - unknown: the model is not read at synth
   */
  readonly info?: OnnxModelInfo;
  /**
   * The bucket that holds the model, when it is an S3 object.
   * @default - not an S3 object
   */
  readonly bucket?: s3.IBucket;
  /**
   * The model's key in `bucket`.
   * @default - not an S3 object
   */
  readonly objectKey?: string;
  /**
   * A pinned version of the S3 object.
   * @default - the latest version
   */
  readonly objectVersion?: string;
  /**
   * The model's size, when known at synth.
   * @default - unknown
   */
  readonly size?: Size;
}

/** Options for `ModelSource.fromBucket`. */
export interface ModelFromBucketOptions {
  /**
   * A version of the object to pin. Without it, every new instance loads the object's latest
   * version, which is how a model is updated without a deploy.
   * @default - the latest version
   */
  readonly version?: string;
  /**
   * The model's size, so that the endpoint can size the function's /tmp and check it fits.
   * @default - unknown: the endpoint falls back to its default ephemeral storage
   */
  readonly size?: Size;
}

/**
 * The ONNX model an endpoint serves: a local file packaged by the app (`fromAsset`) or an object
 * that already lives in S3 (`fromBucket`).
 */
export abstract class ModelSource {
  /**
   * A local .onnx file. It is read at synth (only its header, not its weights): a file that is not
   * a readable ONNX model fails the synth with an error naming it, and its size and signature are
   * used to size the function and to validate requests.
   */
  public static fromAsset(filePath: string): ModelSource {
    return new AssetModelSource(filePath);
  }

  /** An existing S3 object. The endpoint is granted read access to that object alone. */
  public static fromBucket(bucket: s3.IBucket, key: string, options: ModelFromBucketOptions = {}): ModelSource {
    return new BucketModelSource(bucket, key, options);
  }

  /** Resolves the source for an endpoint. */
  public abstract bind(): ModelSourceConfig;
}

class AssetModelSource extends ModelSource {
  private readonly config: ModelSourceConfig;

  constructor(filePath: string) {
    super();
    const localPath = path.resolve(filePath);
    if (!fs.existsSync(localPath) || !fs.statSync(localPath).isFile()) {
      throw unscopedValidationError(`ModelSource.fromAsset: ${localPath} is not a file`);
    }
    let info: OnnxModelInfo;
    try {
      info = readOnnxModelInfo(localPath);
    } catch (err) {
      throw unscopedValidationError(`ModelSource.fromAsset: ${(err as Error).message}`);
    }
    this.config = { localPath, info, size: Size.bytes(info.sizeBytes) };
  }

  public bind(): ModelSourceConfig {
    return this.config;
  }
}

class BucketModelSource extends ModelSource {
  constructor(
    private readonly bucket: s3.IBucket,
    private readonly key: string,
    private readonly options: ModelFromBucketOptions,
  ) {
    super();
    if (!Token.isUnresolved(key) && (key.length === 0 || key.startsWith('/'))) {
      throw unscopedValidationError(`ModelSource.fromBucket: key must be an object key without a leading '/', got: '${key}'`);
    }
  }

  public bind(): ModelSourceConfig {
    return { bucket: this.bucket, objectKey: this.key, objectVersion: this.options.version, size: this.options.size };
  }
}
