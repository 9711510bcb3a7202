import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, type Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../fixtures/demo-model';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  EfsModelEndpoint,
  LayerModelEndpoint,
  ModelSource,
  S3ModelEndpoint,
  SageMakerEndpoint,
  SageMakerIntegration,
  SageMakerProxyEndpoint,
} from '../../lib';
import { nagFindings, newStack } from '../support/stacks';

/** Every construct with its defaults, and the operations props on one, in one stack. */
function everything(): { app: App; stack: Stack; template: Template } {
  const { app, stack } = newStack();
  const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
  new S3ModelEndpoint(stack, 'S3', { model: model(), modelName: 's3' });
  new S3ModelEndpoint(stack, 'S3FromBucket', { model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'Team', 'team-models'), 'churn/model.onnx'), modelName: 's3b' });
  new LayerModelEndpoint(stack, 'Layer', { model: model(), modelName: 'layer' });
  new BundledModelEndpoint(stack, 'Bundled', {
    model: model(),
    modelName: 'bundled',
    monitoring: {},
    rollout: { sampleRequest: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] } },
    // Logging, where the account has API Gateway's CloudWatch Logs role.
    api: { accessLogging: true, executionLoggingLevel: apigw.MethodLoggingLevel.ERROR },
  });
  new ContainerModelEndpoint(stack, 'Container', { model: model(), modelName: 'container' });
  new EfsModelEndpoint(stack, 'Efs', { model: model(), modelName: 'efs' });
  new SageMakerProxyEndpoint(stack, 'SageMaker', { endpoint: SageMakerEndpoint.fromEndpointName('team-endpoint'), modelName: 'sm' });
  new SageMakerProxyEndpoint(stack, 'SageMakerDirect', {
    endpoint: SageMakerEndpoint.serverless({ image: '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-cpu-py310' }),
    integration: SageMakerIntegration.DIRECT,
    modelName: 'smd',
  });
  return { app, stack, template: Template.fromStack(stack) };
}

/** Actions AWS only grants on Resource "*" (each used with a condition or for its own purpose). */
const STAR_ONLY_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'cloudwatch:PutMetricData',
  // What Lambda reads for the network interfaces of a function in a VPC.
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
]);

describe('security of every construct, together', () => {
  const f = everything();
  const resources = Object.entries(f.template.toJSON().Resources as Record<string, any>);

  it('has no unacknowledged cdk-nag finding (AwsSolutions and Serverless)', () => {
    expect(nagFindings(f.app)).toEqual([]);
  });

  it('acknowledges every finding it leaves with a reason a reviewer can read', () => {
    const reasons = f.app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    expect(reasons.length).toBeGreaterThan(10);
    for (const [id, reason] of reasons) {
      expect(reason.length, id).toBeGreaterThan(40);
    }
  });

  it('grants no wildcard action, and Resource "*" only to actions that allow nothing narrower', () => {
    const statements = resources
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
      .flatMap(([id, r]) => (r.Properties.PolicyDocument.Statement as any[]).map((s) => ({ id, ...s })))
      .filter((s) => s.Effect === 'Allow');
    expect(statements.length).toBeGreaterThan(30);
    for (const s of statements) {
      const actions: string[] = [s.Action].flat();
      const where = `${s.id}: ${actions.join(', ')}`;
      expect(
        actions.filter((a) => a === '*' || a.endsWith(':*')),
        where,
      ).toEqual([]);
      if ([s.Resource].flat().includes('*')) {
        expect(
          actions.filter((a) => !STAR_ONLY_ACTIONS.has(a)),
          where,
        ).toEqual([]);
      }
    }
  });

  it("lets functions in a VPC make network interfaces only in their own subnets, not with AWS's managed policy", () => {
    const roles = resources.filter(([, r]) => r.Type === 'AWS::IAM::Role');
    for (const [id, role] of roles) {
      expect(JSON.stringify(role.Properties.ManagedPolicyArns ?? []), id).not.toContain('AWSLambdaVPCAccessExecutionRole');
    }
    const creates = resources
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
      .flatMap(([, r]) => r.Properties.PolicyDocument.Statement as any[])
      .filter((s) => [s.Action].flat().includes('ec2:CreateNetworkInterface'));
    // The EFS endpoint's function, its model loader and the copy's check.
    expect(creates).toHaveLength(3);
    for (const s of creates) {
      expect(JSON.stringify(s.Resource)).toMatch(/:subnet\/.*:security-group\//);
    }
  });

  it('scopes model reads, endpoint invocations and file system access to the one resource', () => {
    const allows = resources
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
      .flatMap(([, r]) => r.Properties.PolicyDocument.Statement as any[])
      .filter((s) => s.Effect === 'Allow');
    const resourcesOf = (action: string) => allows.filter((s) => [s.Action].flat().includes(action)).flatMap((s) => [s.Resource].flat());
    // s3:GetObject: a model object (its key, no bucket-wide /*), or an asset of the cloud assembly.
    for (const r of resourcesOf('s3:GetObject')) {
      const text = JSON.stringify(r);
      expect(text.endsWith('/*"') || text.endsWith('/*"]]}'), text).toBe(false);
    }
    for (const r of resourcesOf('sagemaker:InvokeEndpoint')) {
      expect(JSON.stringify(r)).toMatch(/endpoint\/team-endpoint|"Ref":"SageMakerDirectEndpoint/);
    }
    for (const r of resourcesOf('elasticfilesystem:ClientMount')) {
      expect(JSON.stringify(r)).toMatch(/EfsFileSystem.*Arn/);
    }
  });

  it('encrypts, blocks and requires TLS on every bucket it creates', () => {
    const buckets = resources.filter(([, r]) => r.Type === 'AWS::S3::Bucket');
    expect(buckets.length).toBeGreaterThanOrEqual(2);
    const policies = resources.filter(([, r]) => r.Type === 'AWS::S3::BucketPolicy').map(([, r]) => r.Properties);
    for (const [id, b] of buckets) {
      expect(b.Properties.BucketEncryption, id).toBeDefined();
      expect(b.Properties.PublicAccessBlockConfiguration, id).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      const policy = policies.find((p) => p.Bucket.Ref === id);
      expect(JSON.stringify(policy?.PolicyDocument), id).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('encrypts the file system at rest and in transit', () => {
    const [[, efs]] = resources.filter(([, r]) => r.Type === 'AWS::EFS::FileSystem');
    expect(efs.Properties.Encrypted).toBe(true);
    expect(JSON.stringify(efs.Properties.FileSystemPolicy)).toContain('"aws:SecureTransport":"false"');
  });

  it("logs an API stage when asked (without the account's API Gateway role a logging stage cannot deploy), and puts no secret in an environment variable", () => {
    const stages = resources.filter(([, r]) => r.Type === 'AWS::ApiGateway::Stage');
    expect(stages).toHaveLength(8);
    const logged = stages.filter(([, s]) => s.Properties.AccessLogSetting?.DestinationArn !== undefined);
    expect(logged.map(([id]) => id)).toEqual([expect.stringMatching(/^Bundled/)]);
    expect(logged[0][1].Properties.MethodSettings[0].LoggingLevel).toBe('ERROR');
    // The others' logging is opt-in, acknowledged to cdk-nag (see the first test).
    for (const [id, fn] of resources.filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
      for (const [name, value] of Object.entries<unknown>(fn.Properties.Environment?.Variables ?? {})) {
        expect(name, id).not.toMatch(/SECRET|PASSWORD|TOKEN|ACCESS_KEY|PRIVATE/i);
        expect(JSON.stringify(value), `${id} ${name}`).not.toMatch(/AKIA[0-9A-Z]{16}|-----BEGIN/);
      }
    }
  });
});

describe('the handlers', () => {
  it('ship no credentials or keys', () => {
    const root = path.resolve(__dirname, '../..', 'assets', 'handlers');
    const files = fs.readdirSync(root, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name.endsWith('.mjs'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const text = fs.readFileSync(path.join(f.parentPath, f.name), 'utf8');
      expect(text, f.name).not.toMatch(/AKIA[0-9A-Z]{16}|-----BEGIN (RSA |EC )?PRIVATE KEY/);
    }
  });
});
