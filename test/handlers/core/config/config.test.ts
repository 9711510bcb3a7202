/**
 * The handler's configuration, read from the environment in one place: values parsed, defaults
 * filled in, and a bad value refused with the variable's name.
 */
import { describe, expect, it } from 'vitest';
import { type HandlerConfig, readConfig, readS3FetchSettings, readSageMakerProxyConfig } from '../../../../handlers/core/config/config';

const S3_MODEL = { MODEL_S3_URI: 's3://bucket/models/model.onnx' };

function s3Location(config: HandlerConfig) {
  if (config.location.kind !== 's3') throw new Error(`expected an S3 location, got ${config.location.kind}`);
  return config.location;
}

describe('the S3 fetch settings', () => {
  it('are parsed into the S3 model location', () => {
    const config = readConfig({
      ...S3_MODEL,
      MODEL_S3_FORCE_PATH_STYLE: 'true',
      MODEL_S3_PART_SIZE_MB: '4',
      MODEL_S3_CONCURRENCY: '12',
      MODEL_S3_PART_ATTEMPTS: '5',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008',
    });

    expect(s3Location(config).fetchSettings).toEqual({ forcePathStyle: true, partSizeBytes: 4 * 1024 * 1024, concurrency: 12, partAttempts: 5, memoryMb: 3008 });
  });

  it('leave unset (or empty) what fetchS3Model chooses itself', () => {
    expect(s3Location(readConfig(S3_MODEL)).fetchSettings).toEqual({ forcePathStyle: false });
    expect(readS3FetchSettings({ MODEL_S3_CONCURRENCY: '', MODEL_S3_FORCE_PATH_STYLE: '' })).toEqual({ forcePathStyle: false });
    expect(readS3FetchSettings({ MODEL_S3_FORCE_PATH_STYLE: 'false' }).forcePathStyle).toBe(false);
  });

  it.each([
    ['MODEL_S3_CONCURRENCY', 'abc', /MODEL_S3_CONCURRENCY must be a non-negative integer, got: abc/],
    ['MODEL_S3_CONCURRENCY', '0', /MODEL_S3_CONCURRENCY must be a positive integer, got: 0/],
    ['MODEL_S3_CONCURRENCY', '2.5', /MODEL_S3_CONCURRENCY must be a non-negative integer, got: 2.5/],
    ['MODEL_S3_PART_SIZE_MB', '8MB', /MODEL_S3_PART_SIZE_MB must be a non-negative integer, got: 8MB/],
    ['MODEL_S3_PART_SIZE_MB', '0', /MODEL_S3_PART_SIZE_MB must be a positive integer, got: 0/],
    ['MODEL_S3_PART_ATTEMPTS', '-1', /MODEL_S3_PART_ATTEMPTS must be a non-negative integer, got: -1/],
    ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'lots', /AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a non-negative integer, got: lots/],
    ['MODEL_S3_FORCE_PATH_STYLE', 'yes', /MODEL_S3_FORCE_PATH_STYLE must be true or false, got: yes/],
  ])('refuse %s=%s, naming the variable', (name, value, message) => {
    expect(() => readConfig({ ...S3_MODEL, [name]: value })).toThrow(message);
    // The EFS model loader reads them with the same function.
    expect(() => readS3FetchSettings({ [name]: value })).toThrow(message);
  });

  it('are not read for a local model, which fetches nothing', () => {
    const config = readConfig({ MODEL_PATH: '/opt/model.onnx', MODEL_S3_CONCURRENCY: 'abc' });

    expect(config.location).toEqual({ kind: 'file', path: '/opt/model.onnx', precompiledPath: undefined });
  });
});

describe("the telemetry's names", () => {
  it("are the constructs' POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE, with defaults, in both handlers", () => {
    const names = { POWERTOOLS_SERVICE_NAME: 'StackEndpoint', POWERTOOLS_METRICS_NAMESPACE: 'Custom' };
    for (const read of [
      (env: NodeJS.ProcessEnv) => readConfig({ ...S3_MODEL, ...env }),
      (env: NodeJS.ProcessEnv) => readSageMakerProxyConfig({ SAGEMAKER_ENDPOINT_NAME: 'e', ...env }),
    ]) {
      expect(read(names)).toMatchObject({ serviceName: 'StackEndpoint', metricsNamespace: 'Custom' });
      expect(read({})).toMatchObject({ serviceName: 'cdk-serverless-inference', metricsNamespace: 'CdkServerlessInference' });
    }
  });
});

describe("onnxruntime's telemetry switch", () => {
  it('is ORT_DISABLE_TELEMETRY as set, else 1 (off)', () => {
    expect(readConfig(S3_MODEL).ortDisableTelemetry).toBe('1');
    expect(readConfig({ ...S3_MODEL, ORT_DISABLE_TELEMETRY: '0' }).ortDisableTelemetry).toBe('0');
  });
});
