import * as lambda from 'aws-cdk-lib/aws-lambda';

/**
 * The oldest Node.js major the library's functions run on. The prebuilt handler bundles target
 * Node.js 20 (a floor for their syntax and APIs), and onnxruntime-node's binding is built for
 * Node-API 6, whose ABI every later Node.js major keeps; nodejs20.x is deprecated on Lambda, and
 * Managed Instances take Node.js 22 and later. Neither sets a ceiling.
 */
export const MIN_NODE_MAJOR = 22;

const NODE_RUNTIME_STATIC = /^NODEJS_(\d+)_X$/;

/**
 * Every `lambda.Runtime.NODEJS_<N>_X` of the aws-cdk-lib the app installed with N at least
 * MIN_NODE_MAJOR, oldest first: the runtimes the ONNX Runtime layer lists as compatible. Read from the
 * class's static members, not `Runtime.ALL`, which also holds every runtime an app constructed itself.
 */
export function supportedNodeRuntimes(): lambda.Runtime[] {
  return Object.entries(lambda.Runtime)
    .flatMap(([key, value]) => {
      const major = Number(NODE_RUNTIME_STATIC.exec(key)?.[1]);
      return major >= MIN_NODE_MAJOR && value instanceof lambda.Runtime ? [{ major, runtime: value }] : [];
    })
    .sort((a, b) => a.major - b.major)
    .map((r) => r.runtime);
}

/**
 * The runtime of every function the library creates when none is given: the newest Node.js runtime
 * the installed aws-cdk-lib defines (nodejs24.x with aws-cdk-lib 2.257), so that an app on a newer
 * aws-cdk-lib gets the newest runtime it knows, which cdk-nag's latest-runtime rules check against.
 */
export function defaultNodeRuntime(): lambda.Runtime {
  const runtimes = supportedNodeRuntimes();
  if (runtimes.length === 0) {
    throw new Error(`the installed aws-cdk-lib defines no lambda.Runtime.NODEJS_<N>_X with N >= ${MIN_NODE_MAJOR}; install aws-cdk-lib 2.257 or later`);
  }
  return runtimes[runtimes.length - 1];
}
