import { Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, wildcardResourceFinding } from './acknowledge';

/**
 * Read access to the one model object: GetObject on its key (and version). With `listBucket`,
 * also ListBucket on the bucket, so that a missing object reads as "does not exist" rather than
 * "access denied". The listing is limited to the model's key by an `s3:prefix` condition: S3 checks
 * ListBucket for a missing key with the key as `s3:prefix` (Ceph RGW matched that AWS behaviour in
 * ceph/ceph#68577; not checked against AWS from here). A listing with that prefix still answers
 * every key that begins with the model's key, so it is for a bucket whose keys the endpoint
 * chooses (its own), not for a key a user named in a shared bucket.
 */
export function grantReadModelObject(role: iam.IRole, bucket: s3.IBucket, key: string, version: string | undefined, options: { readonly listBucket?: boolean } = {}): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: version ? ['s3:GetObject', 's3:GetObjectVersion'] : ['s3:GetObject'],
      resources: [bucket.arnForObjects(key)],
    }),
  );
  if (options.listBucket) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringEquals: { 's3:prefix': key } } }));
  }
  bucket.encryptionKey?.grantDecrypt(role);
}

/**
 * What Lambda needs on a function's role to attach the function to a VPC, limited to the
 * function's own subnets and security groups: AWS's managed `AWSLambdaVPCAccessExecutionRole`
 * grants the same actions on every resource. Lambda checks the role when it creates the function;
 * aws-cdk-lib makes a function depend on its role, the role's policies included.
 *
 * What this relies on (read 2026-12):
 * - Lambda's developer guide ("Giving Lambda functions access to resources in an Amazon VPC",
 *   required IAM permissions) lists the execution role's actions: ec2:CreateNetworkInterface,
 *   ec2:DescribeNetworkInterfaces ("only works if it's allowed on all resources"),
 *   ec2:DescribeSubnets, ec2:DeleteNetworkInterface (with resource ids given, e.g.
 *   network-interface/*), ec2:AssignPrivateIpAddresses and ec2:UnassignPrivateIpAddresses: the
 *   actions of the managed policy's version 3. Lambda calls EC2 with the role itself (CloudTrail
 *   shows the role's session), so resource-level permissions apply to those calls.
 * - The Service Authorization Reference for EC2: CreateNetworkInterface is authorized on the new
 *   network-interface, the subnet and the security groups, so naming the subnets and security
 *   groups confines where an interface can be made (its id is not known before, hence
 *   network-interface/* in the function's account and region). DeleteNetworkInterface,
 *   AssignPrivateIpAddresses and UnassignPrivateIpAddresses are authorized on the network-interface
 *   alone and support the `ec2:Subnet` condition key (the interface's subnet ARN): that limits them
 *   to interfaces in the function's subnets. DescribeNetworkInterfaces and DescribeSubnets support
 *   no resource-level permissions: Resource "*".
 *
 * Subnets are named in the stack's account: subnets shared from another account (VPC sharing) are
 * not covered; give such a function a role of your own.
 */
export function grantLambdaVpcAccess(role: iam.IRole, subnetIds: readonly string[], securityGroups: readonly ec2.ISecurityGroup[]): void {
  const stack = Stack.of(role);
  const arn = (resource: string, resourceName: string) => stack.formatArn({ service: 'ec2', resource, resourceName });
  const networkInterfaces = arn('network-interface', '*');
  const subnets = subnetIds.map((id) => arn('subnet', id));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['ec2:CreateNetworkInterface'],
      resources: [networkInterfaces, ...subnets, ...securityGroups.map((sg) => arn('security-group', sg.securityGroupId))],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: [networkInterfaces],
      conditions: { ArnEquals: { 'ec2:Subnet': subnets } },
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], resources: ['*'] }));
  // On the policy that holds the statements where there is one, so that its reasons are the ones
  // shown for it, whatever else is acknowledged on the role (X-Ray's Resource "*", for one).
  const policy = (role instanceof iam.Role ? role.node.tryFindChild('DefaultPolicy') : undefined) ?? role;
  acknowledge(
    policy,
    [wildcardResourceFinding(networkInterfaces, stack)],
    "Lambda's network interfaces get their ids when Lambda creates them: creating one is limited to the function's subnets and security groups, deleting and re-addressing one to interfaces in its subnets (ec2:Subnet).",
  );
  acknowledge(
    policy,
    ['AwsSolutions-IAM5[Resource::*]'],
    'ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets, which Lambda needs for a function in a VPC, support no resource-level permissions: EC2 accepts them only on Resource "*".',
  );
}
