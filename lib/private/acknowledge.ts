import { Stack, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges validation findings (cdk-nag rules) on a construct and its children, with the reason
 * a reviewer reads. `Validations.acknowledge` refuses ids with more than one `::`, which granular
 * findings such as `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:...]` have; those are recorded
 * in the same metadata entry that `Validations` writes and cdk-nag reads.
 */
export function acknowledge(scope: IConstruct, ids: readonly string[], reason: string): void {
  const plain = ids.filter((id) => id.split('::').length <= 2);
  if (plain.length > 0) {
    Validations.of(scope).acknowledge(...plain.map((id) => ({ id, reason })));
  }
  const granular = ids.filter((id) => id.split('::').length > 2);
  if (granular.length > 0) {
    scope.node.addMetadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, Object.fromEntries(granular.map((id) => [`annotation::${id}`, reason])));
  }
}

/**
 * The id cdk-nag gives the finding for `fn.grantInvoke(...)`, which aws-cdk-lib writes as the
 * function's ARN and `<ARN>:*` (any version): `AwsSolutions-IAM5[Resource::<LogicalId.Arn>:*]`.
 */
export function invokeAnyVersionFinding(fn: lambda.Function): string {
  return `AwsSolutions-IAM5[Resource::<${Stack.of(fn).getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`;
}

/**
 * The id cdk-nag gives the finding for a resource ARN with a wildcard, `AwsSolutions-IAM5[Resource::...]`,
 * written as cdk-nag writes it: `{"Ref": "X"}` as `<X>`, `Fn::GetAtt` as `<X.Attr>`, joins joined.
 */
export function wildcardResourceFinding(arn: string, stack: Stack): string {
  return `AwsSolutions-IAM5[Resource::${flattenReference(stack.resolve(arn))}]`;
}

function flattenReference(node: unknown): string {
  if (typeof node === 'string') return node;
  const fn = node as { 'Fn::Join'?: [string, unknown[]]; 'Fn::GetAtt'?: string[]; Ref?: string };
  if (fn['Fn::Join']) {
    const [separator, parts] = fn['Fn::Join'];
    return parts.map(flattenReference).join(separator);
  }
  if (fn['Fn::GetAtt']) return `<${fn['Fn::GetAtt'].join('.')}>`;
  if (fn.Ref) return `<${fn.Ref}>`;
  return JSON.stringify(node);
}
