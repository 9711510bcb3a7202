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
