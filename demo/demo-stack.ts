import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { BundledModelEndpoint, ContainerModelEndpoint, EfsModelEndpoint, LayerModelEndpoint, ModelEndpointBase, ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from './demo-model';

/** How each demo stack packages the demo model: every endpoint of the library, with its defaults. */
export const DEMO_ENDPOINTS = {
  S3: (scope: Construct) => new S3ModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Layer: (scope: Construct) => new LayerModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Bundled: (scope: Construct) => new BundledModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Container: (scope: Construct) => new ContainerModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Efs: (scope: Construct) => new EfsModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
} satisfies Record<string, (scope: Construct) => ModelEndpointBase>;

export type DemoPackaging = keyof typeof DEMO_ENDPOINTS;

export interface DemoStackProps extends StackProps {
  /**
   * How the demo model is packaged.
   * @default 'S3'
   */
  readonly packaging?: DemoPackaging;
}

/** The demo: the shipped demo model behind one of the library's endpoints, with its defaults. */
export class DemoStack extends Stack {
  public readonly endpoint: ModelEndpointBase;

  constructor(scope: Construct, id: string, props: DemoStackProps = {}) {
    super(scope, id, props);
    this.endpoint = DEMO_ENDPOINTS[props.packaging ?? 'S3'](this);
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
  }
}
