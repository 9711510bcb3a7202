// The library's parts, by what a user reaches for.

// The six endpoints, one per way of packaging a model, and the generic one they are built on.
export * from './endpoints/s3-model-endpoint';
export * from './endpoints/layer-model-endpoint';
export * from './endpoints/bundled-model-endpoint';
export * from './endpoints/container-model-endpoint';
export * from './endpoints/efs-model-endpoint';
export * from './endpoints/sagemaker-proxy-endpoint';
export * from './endpoints/model-repository-endpoint';
export * from './endpoints/model-endpoint';

// What every endpoint shares: one interface, the inference function, the API, the warmer.
export * from './endpoints/inference-endpoint';
export * from './function/inference-function';
export * from './hooks/handler-hooks';
export * from './compute/inference-compute';
export { DynamicBatchingOptions } from './compute/dynamic-batching';
export { CaptureMode, DataCapture, type DataCaptureOptions, type DataCaptureProps } from './capture/data-capture';
export { ShadowAgreement, ShadowMode, type ShadowOptions } from './capture/shadow';
export * from './api/inference-api';
export * from './api/inference-function-url';
export * from './operations/warmer';
export { GraphOptimizationLevel } from '../contract/defaults';

// How a model reaches its function.
export * from './packaging/model-packaging';
export { S3ModelPackaging, S3ModelPackagingProps } from './packaging/s3-model-packaging';
export { LayerModelPackaging, LayerModelPackagingProps } from './packaging/layer-model-packaging';
export { BundledModelPackaging, BundledModelPackagingProps } from './packaging/bundled-model-packaging';
export { ContainerModelPackaging, ContainerModelPackagingProps } from './packaging/container-model-packaging';
export { EfsModelPackaging, EfsModelPackagingProps } from './packaging/efs-model-packaging';
export { ModelRepositoryPackaging, ModelRepositoryPackagingProps } from './packaging/model-repository-packaging';
export * from './model/model-source';
export * from './packaging/model-layer';
export * from './runtime/onnxruntime-layer';
export * from './sagemaker/sagemaker-endpoint';
export * from './variants/model-variants';

// The model's signature, read at synth.
export * from './model/onnx-model';
export { OnnxModelInfo, OnnxOpsetImport, TensorSignature } from './model/onnx-model-info';
export { TensorDatatype } from '../contract/datatypes';

// Operations.
export * from './operations/endpoint-metrics';
export * from './operations/endpoint-monitoring';
export * from './operations/gradual-rollout';

// Batch inference on a Step Functions Distributed Map.
export * from './batch/batch-inference';

// Snapshot tests.
export * from './testing/mask-asset-hashes';
export * from './async/async-inference';
export * from './async/async-notifications';
