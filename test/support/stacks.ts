import * as path from 'node:path';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

export function newStack(): { app: App; stack: Stack } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
  return { app, stack };
}

/** The synthesized `Properties` of a construct's CloudFormation resource (its default child). */
export function resourceProps(template: Template, construct: IConstruct): Record<string, any> {
  const resource = template.toJSON().Resources[ref(construct).Ref];
  if (!resource) throw new Error(`no resource for ${construct.node.path}`);
  return resource.Properties ?? {};
}

/** `{ Ref: logicalId }` of a construct's CloudFormation resource. */
export function ref(construct: IConstruct): { Ref: string } {
  const cfn = (construct.node.defaultChild ?? construct) as CfnElement;
  return { Ref: Stack.of(construct).getLogicalId(cfn) };
}

/** Every IAM statement attached to a role by the stack's `AWS::IAM::Policy` resources. */
export function roleStatements(template: Template, role: IConstruct): Array<Record<string, any>> {
  const roleRef = ref(role);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(roleRef)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

/**
 * Unacknowledged findings of cdk-nag's AwsSolutions and Serverless packs, as `rule @ path`.
 * `validateScope` is the entry point that runs the rules with aws-cdk-lib 2.257 (registering the
 * packs as `Validations` plugins does not run them there), with the same acknowledgement check.
 */
export function nagFindings(app: App): string[] {
  return [new AwsSolutionsChecks(app), new ServerlessChecks(app)].flatMap((pack) =>
    pack.validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`)),
  );
}

/** The folder of a zip asset in the synthesized cloud assembly, from its S3 key. */
export function assetFolder(app: App, s3Key: string): string {
  return path.join(app.synth().directory, `asset.${s3Key.replace(/\.zip$/, '')}`);
}

/** The error `make` throws, for assertions on its class and construct path; fails if it throws none. */
export function thrown(make: () => unknown): Error & { constructPath?: string } {
  try {
    make();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
