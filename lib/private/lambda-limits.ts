import { Size, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { validationError } from './errors';

/** Lambda's limits that an endpoint checks at synth, so a misfit fails `cdk synth`, not a deploy. */
export const LAMBDA_LIMITS = {
  minMemoryMiB: 128,
  maxMemoryMiB: 10_240,
  minEphemeralMiB: 512,
  maxEphemeralMiB: 10_240,
  /** Function code plus all its layers, unzipped. */
  maxUnzippedCodeBytes: 250 * 1024 * 1024,
  maxLayers: 5,
  /** Memory that buys one full vCPU; Lambda allocates CPU in proportion to memory, up to 6 vCPUs. */
  memoryPerVcpuMiB: 1769,
  maxVcpus: 6,
} as const;

/**
 * Threads for onnxruntime: one per vCPU the memory size buys. More threads than vCPUs only adds
 * contention; onnxruntime's own default (half the visible cores) leaves CPU idle on Lambda.
 */
export function inferenceThreads(memoryMiB: number): number {
  return Math.min(LAMBDA_LIMITS.maxVcpus, Math.max(1, Math.round(memoryMiB / LAMBDA_LIMITS.memoryPerVcpuMiB)));
}

export function validateMemorySize(scope: IConstruct, memoryMiB: number, prop = 'memorySize'): void {
  if (Token.isUnresolved(memoryMiB)) return;
  if (!Number.isInteger(memoryMiB) || memoryMiB < LAMBDA_LIMITS.minMemoryMiB || memoryMiB > LAMBDA_LIMITS.maxMemoryMiB) {
    throw validationError(
      scope,
      `${prop} must be a whole number of MiB between ${LAMBDA_LIMITS.minMemoryMiB} and ${LAMBDA_LIMITS.maxMemoryMiB} (Lambda's limits), got: ${memoryMiB}`,
    );
  }
}

/**
 * /tmp for a model fetched at cold start: the model plus a fifth and 256 MiB of headroom (the
 * runtime's own files, a retried download), rounded up to 64 MiB, at least Lambda's 512 MiB.
 * Throws when even Lambda's largest /tmp cannot hold the model.
 */
export function ephemeralStorageForModel(scope: IConstruct, modelBytes: number, prop = 'model'): Size {
  const needed = Math.ceil((modelBytes * 1.2 + 256 * 1024 * 1024) / (64 * 1024 * 1024)) * 64;
  if (needed > LAMBDA_LIMITS.maxEphemeralMiB) {
    throw validationError(
      scope,
      `${prop} is ${formatBytes(modelBytes)}, more than Lambda's largest /tmp (${LAMBDA_LIMITS.maxEphemeralMiB} MiB) can hold with headroom ` +
        `(${needed} MiB needed): serve it from EFS (EfsModelEndpoint) or a container image (ContainerModelEndpoint)`,
    );
  }
  return Size.mebibytes(Math.max(LAMBDA_LIMITS.minEphemeralMiB, needed));
}

/** Checks a chosen /tmp size against Lambda's range and, when known, the model it must hold. */
export function validateEphemeralStorage(scope: IConstruct, size: Size, modelBytes: number | undefined, prop = 'ephemeralStorageSize'): void {
  const mib = size.toMebibytes();
  if (Token.isUnresolved(mib)) return;
  if (mib < LAMBDA_LIMITS.minEphemeralMiB || mib > LAMBDA_LIMITS.maxEphemeralMiB) {
    throw validationError(scope, `${prop} must be between ${LAMBDA_LIMITS.minEphemeralMiB} and ${LAMBDA_LIMITS.maxEphemeralMiB} MiB (Lambda's limits), got: ${mib} MiB`);
  }
  if (modelBytes !== undefined) {
    const needed = ephemeralStorageForModel(scope, modelBytes).toMebibytes();
    if (mib < needed) {
      throw validationError(scope, `${prop} is ${mib} MiB, too small for the ${formatBytes(modelBytes)} model fetched into /tmp: it needs at least ${needed} MiB`);
    }
  }
}

/** Function code plus layers must fit in 250 MB unzipped, in at most 5 layers; the error lists each part. */
export function validateCodeSize(scope: IConstruct, parts: readonly { readonly name: string; readonly sizeBytes: number }[], layerCount: number): void {
  if (layerCount > LAMBDA_LIMITS.maxLayers) {
    throw validationError(scope, `a function can have at most ${LAMBDA_LIMITS.maxLayers} layers, got: ${layerCount}`);
  }
  const total = parts.reduce((a, p) => a + p.sizeBytes, 0);
  if (total > LAMBDA_LIMITS.maxUnzippedCodeBytes) {
    const list = parts.map((p) => `${p.name} ${formatBytes(p.sizeBytes)}`).join(', ');
    throw validationError(
      scope,
      `the function's code and layers are ${formatBytes(total)} unzipped, over Lambda's limit of 250 MiB (${list}): serve the model from S3, EFS or a container image instead`,
    );
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
