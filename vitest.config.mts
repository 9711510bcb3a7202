import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
  },
});
