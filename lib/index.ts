// The library's parts, by what a user reaches for.

// The six endpoints, one per way of packaging a model, and the generic one they are built on.
export * from './s3-model-endpoint';
export * from './layer-model-endpoint';
export * from './bundled-model-endpoint';
export * from './container-model-endpoint';
export * from './efs-model-endpoint';
export * from './sagemaker-proxy-endpoint';
export * from './model-endpoint';

// What every endpoint shares: one interface, the inference function, the API, the warmer.
export * from './inference-endpoint';
export * from './inference-function';
export * from './handler-hooks';
export * from './inference-compute';
export * from './inference-api';
export * from './warmer';
export { GraphOptimizationLevel } from '../contract/defaults';

// How a model reaches its function.
export * from './packaging/model-packaging';
export { S3ModelPackaging, S3ModelPackagingProps } from './packaging/s3-model-packaging';
export { LayerModelPackaging, LayerModelPackagingProps } from './packaging/layer-model-packaging';
export { BundledModelPackaging, BundledModelPackagingProps } from './packaging/bundled-model-packaging';
export { ContainerModelPackaging, ContainerModelPackagingProps } from './packaging/container-model-packaging';
export { EfsModelPackaging, EfsModelPackagingProps } from './packaging/efs-model-packaging';
export * from './model/model-source';
export * from './model-layer';
export * from './onnxruntime-layer';
export * from './sagemaker/sagemaker-endpoint';

// The model's signature, read at synth.
export * from './model/onnx-model';
export { OnnxModelInfo, OnnxOpsetImport, TensorSignature } from './model/onnx-model-info';
export { TensorDatatype } from '../contract/datatypes';

// Operations.
export * from './operations/endpoint-monitoring';
export * from './operations/gradual-rollout';

// Snapshot tests.
export * from './testing/mask-asset-hashes';
