export * from './protobuf-writer';
export * from './model-builder';
export * from './models';
export * from './kernel-models';
export * from './comparison-models';
