import { Size, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { ephemeralStorageForModel, inferenceThreads, validateCodeSize, validateEphemeralStorage } from '../../../lib/private/lambda-limits';

const MiB = 1024 * 1024;
const scope = new Stack();

describe('inferenceThreads', () => {
  it('is one thread per vCPU that the memory buys (1,769 MiB each), from 1 to 6', () => {
    expect([128, 1769, 2653, 2654, 3538, 7076, 10_240].map(inferenceThreads)).toEqual([1, 1, 1, 2, 2, 4, 6]);
  });
});

describe('ephemeralStorageForModel', () => {
  it('is at least 512 MiB', () => {
    expect(ephemeralStorageForModel(scope, 1024).toMebibytes()).toBe(512);
  });

  it('holds the model plus a fifth and 256 MiB, in steps of 64 MiB', () => {
    // 1,000 MiB * 1.2 + 256 = 1,456 MiB -> 1,472 MiB.
    expect(ephemeralStorageForModel(scope, 1000 * MiB).toMebibytes()).toBe(1472);
    const size = ephemeralStorageForModel(scope, 5 * 1024 * MiB).toMebibytes();
    expect(size % 64).toBe(0);
    expect(size).toBeGreaterThanOrEqual(5 * 1024 * 1.2 + 256);
    expect(size).toBeLessThan(5 * 1024 * 1.2 + 256 + 64);
  });

  it("names the prop and Lambda's 10,240 MiB when no /tmp can hold the model", () => {
    expect(() => ephemeralStorageForModel(scope, 8500 * MiB, 'model')).toThrow(/model is 8.30 GiB, more than Lambda's largest \/tmp \(10240 MiB\)/);
    // The largest model that fits: (10,240 - 256) / 1.2 MiB.
    expect(ephemeralStorageForModel(scope, Math.floor(((10_240 - 256) / 1.2) * MiB)).toMebibytes()).toBe(10_240);
  });
});

describe('validateEphemeralStorage', () => {
  it('accepts a size in range that holds the model', () => {
    expect(() => validateEphemeralStorage(scope, Size.mebibytes(1472), 1000 * MiB)).not.toThrow();
    expect(() => validateEphemeralStorage(scope, Size.mebibytes(1408), 1000 * MiB)).toThrow(/needs at least 1472 MiB/);
  });
});

describe('validateCodeSize', () => {
  it('accepts code and layers up to 250 MiB unzipped', () => {
    expect(() =>
      validateCodeSize(
        scope,
        [
          { name: 'handler', sizeBytes: 10 * MiB },
          { name: 'layer', sizeBytes: 240 * MiB },
        ],
        1,
      ),
    ).not.toThrow();
  });

  it('lists each part when they add up to more than 250 MiB', () => {
    expect(() =>
      validateCodeSize(
        scope,
        [
          { name: 'inference handler', sizeBytes: 1 * MiB },
          { name: 'ONNX Runtime layer', sizeBytes: 46 * MiB },
          { name: 'model layer', sizeBytes: 210 * MiB },
        ],
        2,
      ),
    ).toThrow(
      "the function's code and layers are 257.0 MiB unzipped, over Lambda's limit of 250 MiB (inference handler 1.0 MiB, ONNX Runtime layer 46.0 MiB, model layer 210.0 MiB)",
    );
  });

  it('refuses more than 5 layers', () => {
    expect(() => validateCodeSize(scope, [], 6)).toThrow('a function can have at most 5 layers, got: 6');
  });
});
