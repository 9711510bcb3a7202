export * from './protobuf-writer';
export * from './model-builder';
export * from './models';
