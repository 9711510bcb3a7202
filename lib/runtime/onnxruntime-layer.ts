import { Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { validationError } from '../private/errors';
import { supportedNodeRuntimes } from '../private/node-runtime';
import { builtLayerZip, readManifest } from './onnxruntime-manifest';

/** The architectures onnxruntime-node ships Linux binaries for, by their Lambda names. */
type OnnxRuntimeLayerArchitectureName = 'x86_64' | 'arm64';

/** Stack-wide singleton ids: stable literals, one per supported architecture. */
const SINGLETON_IDS: Record<OnnxRuntimeLayerArchitectureName, string> = {
  x86_64: 'OnnxRuntimeLayer-x86_64',
  arm64: 'OnnxRuntimeLayer-arm64',
};

/** Props of an `OnnxRuntimeLayer`. */
export interface OnnxRuntimeLayerProps {
  /**
   * The instruction set of the layer's native binaries; functions that use the layer must have the same
   * architecture.
   *
   * `Architecture.ARM_64` (Graviton) ships onnxruntime-node's linux/arm64 build. ONNX Runtime uses
   * pytorch/cpuinfo, which reads `/sys/devices/system/cpu/possible`, absent in Lambda's sandbox:
   * older versions aborted there (microsoft/onnxruntime#10038). 1.30 logs that cpuinfo failed and
   * carries on, reading the CPU's features from the kernel instead, so its kernels are the same; only
   * its default thread count halves, and the library's handler sets the threads itself. The test
   * suite runs this layer under arm64 emulation with that folder hidden (see docs/compute.md).
   *
   * @default lambda.Architecture.X86_64
   */
  readonly architecture?: lambda.Architecture;
}

/**
 * A Lambda layer holding onnxruntime-node (CPU) for Node.js 22 and later functions on one architecture,
 * so `require('onnxruntime-node')` resolves from `/opt/nodejs/node_modules`.
 *
 * It is a `lambda.LayerVersion`, like aws-cdk-lib's `AwsCliLayer` and `KubectlLayer`: it goes straight
 * into a function's `layers`, and every `LayerVersion` property and method works unchanged.
 *
 * The zip is built with the library (`npm run build`) and shipped in its `assets/layers` folder: synth
 * neither installs, downloads nor runs Docker, and the asset hash only changes with onnxruntime-node.
 * Use `OnnxRuntimeLayer.forArchitecture()` to share one layer among all functions of a stack.
 */
export class OnnxRuntimeLayer extends lambda.LayerVersion {
  /**
   * The stack's one layer for `architecture`, created on first use. Every function in a stack that uses
   * the same architecture then shares a single `AWS::Lambda::LayerVersion` and a single asset.
   *
   * @param scope any construct in the stack
   * @param architecture @default lambda.Architecture.X86_64
   */
  public static forArchitecture(scope: Construct, architecture: lambda.Architecture = lambda.Architecture.X86_64): OnnxRuntimeLayer {
    const stack = Stack.of(scope);
    const id = SINGLETON_IDS[supportedArchitectureName(scope, architecture)];
    const existing = stack.node.tryFindChild(id);
    if (existing instanceof OnnxRuntimeLayer) {
      return existing;
    }
    if (existing) {
      throw validationError(
        scope,
        `OnnxRuntimeLayer: the id "${id}" in stack ${stack.node.path} is taken by another construct ` +
          `(${existing.constructor.name}); it is reserved for the stack's shared ONNX Runtime layer.`,
      );
    }
    return new OnnxRuntimeLayer(stack, id, { architecture });
  }

  /** The architecture of the layer's native binaries. */
  public readonly architecture: lambda.Architecture;

  /** Version of onnxruntime-node inside the layer. */
  public readonly onnxruntimeVersion: string;

  /**
   * Bytes the layer takes once extracted. Lambda limits a function's code plus all its layers to
   * 250 MB (262,144,000 bytes) unzipped; functions that use the layer can check their budget at synth.
   */
  public readonly unzippedSizeBytes: number;

  constructor(scope: Construct, id: string, props: OnnxRuntimeLayerProps = {}) {
    const architecture = props.architecture ?? lambda.Architecture.X86_64;
    const archName = supportedArchitectureName(scope, architecture);
    const manifest = readManifest();
    const layer = manifest.layers[archName];
    const zipPath = builtLayerZip(layer, archName);

    super(scope, id, {
      code: lambda.Code.fromAsset(zipPath),
      compatibleArchitectures: [architecture],
      compatibleRuntimes: supportedNodeRuntimes(),
      description: `onnxruntime-node ${manifest.onnxruntimeVersion} (CPU) for Node.js, ${archName}`,
      license: 'MIT',
    });

    this.architecture = architecture;
    this.onnxruntimeVersion = manifest.onnxruntimeVersion;
    this.unzippedSizeBytes = layer.unzippedBytes;
  }
}

function supportedArchitectureName(scope: Construct, architecture: lambda.Architecture): OnnxRuntimeLayerArchitectureName {
  const name = architecture.name;
  if (name !== 'x86_64' && name !== 'arm64') {
    throw validationError(
      scope,
      `OnnxRuntimeLayer: unsupported architecture "${name}"; expected x86_64 or arm64 ` +
        '(lambda.Architecture.X86_64 or lambda.Architecture.ARM_64), the Linux builds onnxruntime-node ships.',
    );
  }
  return name;
}
