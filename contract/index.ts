/**
 * What the constructs (lib/) and the Lambda handlers (handlers/) agree on: environment variable
 * names and their defaults, metric names, routes, event shapes and custom resource properties. Both sides
 * import this module and nothing else of each other, so a name is defined once. Plain constants and
 * types only: it is bundled into every handler.
 */
export * from './binary-data';
export * from './datatypes';
export * from './defaults';
export * from './environment';
export * from './hooks';
export * from './metrics';
export * from './model-copy';
export * from './pre-traffic-check';
export * from './repository';
export * from './routes';
export * from './sagemaker';
export * from './variants';
export * from './warmup';
export * from './async-inference';
