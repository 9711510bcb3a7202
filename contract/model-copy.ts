/** The properties of the EFS model copy custom resource (`Custom::EfsModelCopy`). */
export const MODEL_COPY_PROPERTY = {
  /** `s3://bucket/key` of the model to copy. */
  MODEL_S3_URI: 'ModelS3Uri',
  /** Optional S3 object version of the model; empty or absent means the latest. */
  MODEL_S3_VERSION_ID: 'ModelS3VersionId',
  /** Where the loader has the file system mounted (absolute). */
  MOUNT_PATH: 'MountPath',
  /** The file written under MOUNT_PATH: a plain name ending in `.onnx`. */
  MODEL_FILE_NAME: 'ModelFileName',
  /** Optional `s3://bucket/key` of the model precompiled in ORT format, copied beside the model. */
  PRECOMPILED_S3_URI: 'PrecompiledS3Uri',
  /** Where the precompiled model is written under MOUNT_PATH: a plain name ending in `.ort`; with PRECOMPILED_S3_URI only. */
  PRECOMPILED_FILE_NAME: 'PrecompiledFileName',
} as const;

/** The custom resource type of the EFS model copy. */
export const MODEL_COPY_RESOURCE_TYPE = 'Custom::EfsModelCopy';

/** Where the inference function and the model loader mount the model file system. */
export const EFS_MOUNT_PATH = '/mnt/models';

/**
 * The model copy runs asynchronously: a starter (the custom resource's onEvent handler, outside the
 * VPC) invokes the loader asynchronously, and a check (its isComplete handler, on the file system)
 * reads the loader's status file until the copy succeeds or fails. Three functions, one bundle.
 */
export const MODEL_COPY_HANDLER = {
  /** The loader: runs a copy job (asynchronous invocation) or a custom resource event (synchronous). */
  LOADER: 'index.handler',
  /** The starter: the custom resource's onEvent handler. */
  START: 'index.start',
  /** The check: the custom resource's isComplete handler. */
  IS_COMPLETE: 'index.isComplete',
} as const;

/** The starter's environment. */
export const MODEL_COPY_ENV = {
  /** ARN of the loader function: invoked asynchronously to copy, synchronously to delete. */
  LOADER_FUNCTION_ARN: 'MODEL_LOADER_FUNCTION_ARN',
} as const;

/**
 * How long a copy job may wait in Lambda's queue of asynchronous invocations (the loader's maximum
 * event age): past it Lambda drops it, and the check, seeing no status, fails the deploy.
 */
export const MODEL_COPY_START_WINDOW_SECONDS = 300;
