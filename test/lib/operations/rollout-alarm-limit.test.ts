/**
 * CodeDeploy's limit of 10 alarms per deployment group, at its edge: 10 are taken, all of them in
 * the group, and 11 fail the synth (the other test only tries 11).
 */
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { ModelSource, S3ModelEndpoint } from '../../../lib';
import { newStack, thrown } from '../../support/stacks';

function endpointWithOwnAlarms(count: number) {
  const { stack } = newStack();
  const own = Array.from(
    { length: count },
    (_, i) => new cloudwatch.Alarm(stack, `Own${i}`, { metric: new cloudwatch.Metric({ namespace: 'N', metricName: `M${i}` }), threshold: 1, evaluationPeriods: 1 }),
  );
  const endpoint = new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), monitoring: {}, rollout: { rollbackOnEndpointAlarms: true, alarms: own } });
  return { stack, endpoint };
}

describe("a rollout's alarms at CodeDeploy's limit", () => {
  it('takes exactly 10: 2 canary alarms, the endpoint’s 5 and 3 of its own, all in the deployment group', () => {
    const { stack } = endpointWithOwnAlarms(3);
    const groups = Object.values(Template.fromStack(stack).findResources('AWS::CodeDeploy::DeploymentGroup'));
    expect(groups).toHaveLength(1);
    expect(groups[0].Properties.AlarmConfiguration.Alarms).toHaveLength(10);
  });

  it('refuses 11, naming the limit', () => {
    expect(thrown(() => endpointWithOwnAlarms(4)).message).toMatch(/at most 10 alarms per deployment group, got: 11/);
  });
});
