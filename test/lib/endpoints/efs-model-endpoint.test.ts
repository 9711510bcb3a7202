import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { EfsModelEndpoint, type EfsModelEndpointProps, ModelSource } from '../../../lib';
import { logisticRegressionModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { nagFindings, newStack, ref, resourceProps, roleStatements } from '../../support/stacks';

function setup(props: Partial<EfsModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new EfsModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

const actionsOf = (statements: Array<Record<string, any>>) => statements.flatMap((s) => [s.Action].flat());

/** The role's statements on EC2 actions. */
function vpcAccessStatements(template: Template, role: IConstruct): Array<Record<string, any>> {
  return roleStatements(template, role).filter((s) => actionsOf([s]).some((a) => a.startsWith('ec2:')));
}

/**
 * What Lambda needs for a function's network interfaces, scoped to its subnets and security groups:
 * creating them there, deleting and re-addressing only those in its subnets, and describing (which
 * EC2 allows only on "*").
 */
function expectedVpcAccess(subnetIds: unknown[], securityGroupIds: unknown[]): Array<Record<string, any>> {
  const arn = (resource: string, id: unknown) => ({
    'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ec2:eu-west-1:123456789012:${resource}/`, id]],
  });
  const networkInterfaces = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:eu-west-1:123456789012:network-interface/*']] };
  const subnets = subnetIds.map((id) => arn('subnet', id));
  expect(subnets.length).toBeGreaterThan(0);
  return [
    {
      Effect: 'Allow',
      Action: 'ec2:CreateNetworkInterface',
      Resource: [networkInterfaces, ...subnets, ...securityGroupIds.map((id) => arn('security-group', id))],
    },
    {
      Effect: 'Allow',
      Action: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: networkInterfaces,
      Condition: { ArnEquals: { 'ec2:Subnet': subnets } },
    },
    { Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' },
  ];
}

describe('EfsModelEndpoint defaults', () => {
  const f = setup();
  const fn = () => resourceProps(f.template, f.endpoint.function);

  it('mounts the access point at /mnt/models and reads the model there, after the copy', () => {
    expect(fn().FileSystemConfigs).toEqual([{ Arn: f.stack.resolve(f.endpoint.accessPoint.accessPointArn), LocalMountPath: '/mnt/models' }]);
    expect(JSON.stringify(fn().FileSystemConfigs)).toContain(ref(f.endpoint.accessPoint).Ref);
    expect(fn().Environment.Variables.MODEL_PATH).toMatch(/^\/mnt\/models\/demo-[0-9a-f]{16}\.onnx$/);
    expect(fn().Environment.Variables.MODEL_PATH).toBe(f.endpoint.modelPath);
    expect(fn().EphemeralStorage).toBeUndefined();
    expect(f.template.toJSON().Resources[ref(f.endpoint.function).Ref].DependsOn).toEqual(expect.arrayContaining([ref(f.endpoint.modelCopy).Ref]));
  });

  it('runs in a new VPC of isolated subnets, without NAT, with an S3 gateway endpoint and rejected-traffic flow logs', () => {
    f.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    f.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    f.template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway', ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] } });
    f.template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
    const subnets = fn().VpcConfig.SubnetIds;
    expect(subnets).toHaveLength(2);
  });

  it('needs no availability-zone lookup with an explicit account and region: a synth without credentials works', () => {
    // newStack() gives the stack an account and region, where ec2.Vpc would look the zones up.
    expect(f.stack.account).toBe('123456789012');
    expect(f.app.synth().manifest.missing ?? []).toEqual([]);
    const subnets = Object.values(f.template.findResources('AWS::EC2::Subnet')).map((r) => r.Properties);
    expect(subnets.map((p) => p.AvailabilityZone)).toEqual([0, 1].map((i) => ({ 'Fn::Select': [i, { 'Fn::GetAZs': '' }] })));
    expect(subnets.map((p) => p.CidrBlock)).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    expect(subnets.every((p) => p.MapPublicIpOnLaunch === false)).toBe(true);
    // Each subnet has its own route table, which the S3 gateway endpoint routes through.
    const tables = Object.keys(f.template.findResources('AWS::EC2::RouteTable'));
    expect(tables).toHaveLength(2);
    const endpoint = Object.values(f.template.findResources('AWS::EC2::VPCEndpoint'))[0].Properties;
    expect(endpoint.RouteTableIds).toEqual(tables.map((id) => ({ Ref: id })));
    const associations = Object.values(f.template.findResources('AWS::EC2::SubnetRouteTableAssociation')).map((r) => r.Properties.RouteTableId);
    expect(associations).toEqual(tables.map((id) => ({ Ref: id })));
    expect(fn().VpcConfig.SubnetIds).toEqual(Object.keys(f.template.findResources('AWS::EC2::Subnet')).map((id) => ({ Ref: id })));
    // The loader runs once the routes, to S3 included, exist.
    const [endpointId] = Object.keys(f.template.findResources('AWS::EC2::VPCEndpoint'));
    const associationIds = Object.keys(f.template.findResources('AWS::EC2::SubnetRouteTableAssociation'));
    expect(f.template.toJSON().Resources[ref(f.endpoint.modelLoader).Ref].DependsOn).toEqual(expect.arrayContaining([endpointId, ...associationIds]));
  });

  it('keeps the model on an encrypted file system with elastic throughput, behind a POSIX access point', () => {
    const fsResource = f.template.toJSON().Resources[ref(f.endpoint.fileSystem).Ref];
    expect(fsResource.Properties).toMatchObject({ Encrypted: true, ThroughputMode: 'elastic', PerformanceMode: 'generalPurpose' });
    expect(fsResource.DeletionPolicy).toBe('Delete');
    expect(resourceProps(f.template, f.endpoint.accessPoint)).toMatchObject({
      PosixUser: { Uid: '1001', Gid: '1001' },
      RootDirectory: { Path: '/models', CreationInfo: { OwnerUid: '1001', OwnerGid: '1001', Permissions: '750' } },
    });
  });

  it('lets the function mount and read the file system, never write it', () => {
    const statements = roleStatements(f.template, f.endpoint.role);
    expect(actionsOf(statements)).toContain('elasticfilesystem:ClientMount');
    expect(actionsOf(statements)).not.toContain('elasticfilesystem:ClientWrite');
    expect(actionsOf(statements).filter((a) => a.startsWith('s3:'))).toEqual([]);
  });

  it("manages the function's network interfaces in its own subnets and security group only, with no managed policy", () => {
    expect(resourceProps(f.template, f.endpoint.role).ManagedPolicyArns).toBeUndefined();
    expect(vpcAccessStatements(f.template, f.endpoint.role)).toEqual(expectedVpcAccess(fn().VpcConfig.SubnetIds, fn().VpcConfig.SecurityGroupIds));
    // Lambda checks the role when it creates the function: the policy exists before it.
    const policies = Object.entries(f.template.findResources('AWS::IAM::Policy')).filter(([, p]) => JSON.stringify(p.Properties).includes('ec2:CreateNetworkInterface'));
    const [functionPolicy] = policies.filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([ref(f.endpoint.role)]));
    expect(f.template.toJSON().Resources[ref(f.endpoint.function).Ref].DependsOn).toContain(functionPolicy[0]);
  });

  it('acknowledges the network-interface wildcards also in a stack with no account or region', () => {
    // The finding ids then name <AWS::Region> and <AWS::AccountId>.
    const app = new App();
    new EfsModelEndpoint(new Stack(app, 'Agnostic'), 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    expect(nagFindings(app)).toEqual([]);
  });

  it('gives the loader the same network-interface permissions, for its own subnets and security group', () => {
    const loader = f.endpoint.modelLoader;
    expect(resourceProps(f.template, loader.role!).ManagedPolicyArns).toBeUndefined();
    const loaderSecurityGroups = resourceProps(f.template, loader).VpcConfig.SecurityGroupIds;
    expect(loaderSecurityGroups).toHaveLength(1);
    expect(vpcAccessStatements(f.template, loader.role!)).toEqual(expectedVpcAccess(resourceProps(f.template, loader).VpcConfig.SubnetIds, loaderSecurityGroups));
  });

  it("lets only the function and the copy's check (read-only) and the loader (read-write) in, by the file system's policy", () => {
    const policy = resourceProps(f.template, f.endpoint.fileSystem).FileSystemPolicy;
    // First, no access without TLS.
    expect(policy.Statement[0]).toEqual({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'elasticfilesystem:*',
      Resource: '*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    const grants = policy.Statement.filter((st: any) => st.Effect === 'Allow').map((st: any) => ({ principal: st.Principal.AWS['Fn::GetAtt'][0], actions: [st.Action].flat() }));
    const checkRole = f.endpoint.node.findAll().find((c) => c.node.id === 'ModelCopyCheckRole')!;
    expect(grants).toEqual([
      { principal: ref(f.endpoint.modelLoader.role!).Ref, actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'] },
      { principal: ref(checkRole).Ref, actions: ['elasticfilesystem:ClientMount'] },
      { principal: ref(f.endpoint.role).Ref, actions: ['elasticfilesystem:ClientMount'] },
    ]);
    expect(policy.Statement.filter((st: any) => st.Effect === 'Allow' && JSON.stringify(st.Principal).includes('"*"'))).toEqual([]);
  });

  it('opens NFS only between the functions and the file system', () => {
    const ingress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties);
    expect(ingress.length).toBeGreaterThanOrEqual(2);
    for (const rule of ingress) {
      expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, SourceSecurityGroupId: expect.anything() });
    }
    const functionSg = Object.values(f.template.findResources('AWS::EC2::SecurityGroup')).find((r) => r.Properties.GroupDescription.startsWith('Inference function'));
    expect(functionSg?.Properties.SecurityGroupEgress).toBeUndefined();
    const egress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupEgress')).map((r) => r.Properties.FromPort);
    expect(egress.every((port) => port === 2049)).toBe(true);
  });

  it('copies the model at deploy with the loader: the prebuilt handler, reading the asset alone, writing the file system', () => {
    const copy = resourceProps(f.template, f.endpoint.modelCopy);
    expect(copy).toMatchObject({
      ModelS3Uri: expect.anything(),
      MountPath: '/mnt/models',
      ModelFileName: f.endpoint.modelPath.split('/').pop(),
    });
    const loader = resourceProps(f.template, f.endpoint.modelLoader);
    expect(loader).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs24.x', Timeout: 900, FileSystemConfigs: [{ LocalMountPath: '/mnt/models' }] });
    const statements = roleStatements(f.template, f.endpoint.modelLoader.role!);
    expect(actionsOf(statements)).toEqual(expect.arrayContaining(['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite', 's3:GetObject']));
    const s3Statement = statements.find((s) => s.Action === 's3:GetObject');
    expect(JSON.stringify(s3Statement?.Resource)).toMatch(/cdk-[a-z0-9]+-assets-123456789012-eu-west-1\/[0-9a-f]{64}\.onnx/);
  });

  it("runs the copy as a job of its own, which the provider waits for: a starter, the loader's asynchronous invocation, a check", () => {
    const byId = (id: string) => f.endpoint.node.findAll().find((c) => c.node.id === id)!;
    const resources = f.template.toJSON().Resources;
    const loader = f.endpoint.modelLoader;
    const loaderProps = resourceProps(f.template, loader);
    // The starter (onEvent) runs outside the VPC, so that it reaches Lambda's API, and invokes the loader.
    const starter = resourceProps(f.template, byId('ModelCopyStarter'));
    expect(starter).toMatchObject({ Handler: 'index.start', Environment: { Variables: { MODEL_LOADER_FUNCTION_ARN: { 'Fn::GetAtt': [ref(loader).Ref, 'Arn'] } } } });
    expect(starter.VpcConfig).toBeUndefined();
    expect(actionsOf(roleStatements(f.template, byId('ModelCopyStarterRole'))).filter((a) => !a.startsWith('logs:'))).toEqual(['lambda:InvokeFunction']);
    // The check (isComplete) reads the loader's status file: on the file system, in the loader's network.
    const check = resourceProps(f.template, byId('ModelCopyCheck'));
    expect(check).toMatchObject({ Handler: 'index.isComplete', FileSystemConfigs: loaderProps.FileSystemConfigs, VpcConfig: loaderProps.VpcConfig });
    // The provider answers CloudFormation when the check says so, polling every 10 s for up to 30 minutes.
    const onEvent = Object.values(resources).find((r: any) => r.Properties?.Environment?.Variables?.USER_ON_EVENT_FUNCTION_ARN) as any;
    expect(onEvent.Properties.Environment.Variables).toMatchObject({
      USER_ON_EVENT_FUNCTION_ARN: { 'Fn::GetAtt': [ref(byId('ModelCopyStarter')).Ref, 'Arn'] },
      USER_IS_COMPLETE_FUNCTION_ARN: { 'Fn::GetAtt': [ref(byId('ModelCopyCheck')).Ref, 'Arn'] },
    });
    const [machine] = Object.values(f.template.findResources('AWS::StepFunctions::StateMachine'));
    expect(JSON.stringify(machine.Properties.DefinitionString)).toContain('\\"IntervalSeconds\\":10,\\"MaxAttempts\\":180');
    // A job runs once or not at all, and its invocation settings exist before the first one.
    const [invokeConfigId, invokeConfig] = Object.entries(f.template.findResources('AWS::Lambda::EventInvokeConfig')).find(
      ([, r]) => JSON.stringify(r.Properties.FunctionName) === JSON.stringify(ref(loader)),
    )!;
    expect(invokeConfig.Properties).toMatchObject({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 });
    expect(resources[ref(f.endpoint.modelCopy).Ref].DependsOn).toContain(invokeConfigId);
  });
});

describe('EfsModelEndpoint props', () => {
  it('a new model is a new file name (older function versions keep theirs)', () => {
    const other = setup({ model: ModelSource.fromAsset(writeModel(logisticRegressionModel().bytes, 'demo.onnx')) });
    expect(other.endpoint.modelPath).toMatch(/^\/mnt\/models\/demo-[0-9a-f]{16}\.onnx$/);
    expect(other.endpoint.modelPath).not.toBe(setup().endpoint.modelPath);
  });

  it('copies a fromBucket model, again when its pinned version changes', () => {
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'Models');
    const v1 = new EfsModelEndpoint(stack, 'V1', { model: ModelSource.fromBucket(bucket, 'team/ranker.onnx', { version: 'v1' }) });
    const v2 = new EfsModelEndpoint(stack, 'V2', { model: ModelSource.fromBucket(bucket, 'team/ranker.onnx', { version: 'v2' }) });
    const template = Template.fromStack(stack);
    expect(resourceProps(template, v1.modelCopy)).toMatchObject({ ModelS3VersionId: 'v1', ModelS3Uri: { 'Fn::Join': ['', ['s3://', ref(bucket), '/team/ranker.onnx']] } });
    expect(v1.modelPath).toMatch(/^\/mnt\/models\/ranker-[0-9a-f]{16}\.onnx$/);
    expect(v1.modelPath).not.toBe(v2.modelPath);
    const loaderActions = actionsOf(roleStatements(template, v1.modelLoader.role!));
    expect(loaderActions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:GetObjectVersion']));
    expect(loaderActions).not.toContain('s3:ListBucket');
  });

  it('uses the given VPC and subnets, creating none', () => {
    const { stack } = newStack();
    const vpc = new ec2.Vpc(stack, 'Own', { natGateways: 1 });
    const endpoint = new EfsModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } });
    expect(endpoint.vpc).toBe(vpc);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    // The network-interface permissions follow the subnets chosen.
    const privateSubnets = vpc.privateSubnets.map((s) => stack.resolve(s.subnetId));
    expect(resourceProps(template, endpoint.function).VpcConfig.SubnetIds).toEqual(privateSubnets);
    expect(vpcAccessStatements(template, endpoint.role)).toEqual(expectedVpcAccess(privateSubnets, resourceProps(template, endpoint.function).VpcConfig.SecurityGroupIds));
  });

  it('throughputMode and fileSystemRemovalPolicy', () => {
    const f = setup({ throughputMode: efs.ThroughputMode.BURSTING, fileSystemRemovalPolicy: RemovalPolicy.RETAIN });
    const fsResource = f.template.toJSON().Resources[ref(f.endpoint.fileSystem).Ref];
    expect(fsResource.Properties.ThroughputMode).toBe('bursting');
    expect(fsResource.DeletionPolicy).toBe('Retain');
  });
});
