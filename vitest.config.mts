import { defineConfig } from 'vitest/config';

/**
 * Tests that take seconds each: they build layers, run arm64 under emulation, spawn the jsii runtime,
 * serve over real HTTP with workers or hooks bundled at start, load-test, fuzz, answer requests of
 * megabytes, or synthesize whole apps, or install the packed library into a new app. `npm run test:unit` leaves them out; `npm test` runs every project.
 */
const SLOW = [
  'test/consumer-app.test.ts',
  'test/demo.test.ts',
  'test/python-docs.test.ts',
  'test/readme-examples.test.ts',
  'test/reproducible-synth.test.ts',
  'test/handlers/core/answer-size.test.ts',
  'test/handlers/core/model/s3-model.test.ts',
  'test/handlers/core/repository-handler.test.ts',
  'test/handlers/reliability/fuzz.test.ts',
  'test/handlers/reliability/load.test.ts',
  'test/lib/jsii-runtime.test.ts',
  'test/lib/endpoints/efs-model-endpoint.test.ts',
  'test/lib/hooks/handler-hooks.test.ts',
  'test/lib/batch/batch-state-machine.test.ts',
  'test/lib/local/batch-command.test.ts',
  'test/lib/local/serve-capture.test.ts',
  'test/lib/local/serve-hooks.test.ts',
  'test/lib/local/serve-repository.test.ts',
  'test/lib/local/serve-workers.test.ts',
  'test/lib/local/serve-batching.test.ts',
  'test/lib/packaging/model-image-context.test.ts',
  'test/lib/runtime/arm64-onnxruntime.test.ts',
  'test/lib/runtime/onnxruntime-layer-build.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    // onnxruntime-node is a native addon: separate processes, not worker threads.
    pool: 'forks',
    // A synth with aws-cdk-lib's validation or a cold model load can pass vitest's default 5 s.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Synth validation is checked once, in the demo synth; the AWS SDK's Node 22 notice is noise here.
    env: { CDK_VALIDATION: 'false', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    server: {
      deps: {
        // Tests load the prebuilt bundles as Node loads them on Lambda, untransformed.
        external: [/\/assets\//],
      },
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: SLOW } },
      { extends: true, test: { name: 'slow', include: SLOW } },
    ],
  },
});
