/**
 * The telemetry warning of Managed Instances where the chosen subnets mix isolated ones with routed
 * ones (the instances in the isolated ones lose their logs), and where the only CloudWatch Logs
 * endpoint is in another VPC.
 */
import type { Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { InferenceCompute, ModelSource, S3ModelEndpoint } from '../../../lib';
import { newStack } from '../../support/stacks';

const WARNING = 'cdk-serverless-inference:managed-instances-telemetry';
const telemetryWarnings = (stack: Stack) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(WARNING));

function isolatedVpc(stack: Stack, id: string): ec2.Vpc {
  return new ec2.Vpc(stack, id, { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
}

describe("Managed Instances' telemetry warning", () => {
  it('warns when some of the chosen subnets are isolated, though others have a NAT route', () => {
    const { stack } = newStack();
    const vpc = new ec2.Vpc(stack, 'Mixed', {
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
        { name: 'routed', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      ],
    });
    const subnets = [vpc.privateSubnets[0], vpc.isolatedSubnets[1]];
    new S3ModelEndpoint(stack, 'E', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      memorySize: 4096,
      compute: InferenceCompute.managedInstances({ vpc, vpcSubnets: { subnets } }),
    });
    expect(telemetryWarnings(stack)).toHaveLength(1);
  });

  it('does not count a CloudWatch Logs endpoint of another VPC', () => {
    const { stack } = newStack();
    const vpc = isolatedVpc(stack, 'Instances');
    isolatedVpc(stack, 'Other').addInterfaceEndpoint('Logs', { service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS });
    new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), memorySize: 4096, compute: InferenceCompute.managedInstances({ vpc }) });
    expect(telemetryWarnings(stack)).toHaveLength(1);
  });
});
