import { Duration, Size, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
// @ts-expect-error -- asl-validator 4 ships no type declarations; its one function is typed below.
import aslValidatorUntyped from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { BATCH_ASSEMBLE_KIND, BATCH_KIND } from '../../../contract/batch';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BatchInference, type BatchInferenceProps, BatchInputFormat, ModelSource, S3ModelEndpoint } from '../../../lib';
import { nagFindings, newStack, ref, roleStatements, thrown } from '../../support/stacks';

const aslValidator = aslValidatorUntyped as (definition: unknown) => { isValid: boolean; errors: unknown[]; errorsText(separator?: string): string };

function batchStack(props: Partial<BatchInferenceProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'demo' });
  const data = new s3.Bucket(stack, 'Data', { enforceSSL: true, serverAccessLogsPrefix: 'access-logs/' });
  const batch = new BatchInference(stack, 'Batch', { inferenceFunction: endpoint.inferenceFunction, inputBucket: data, inputKey: 'rows.jsonl', ...props });
  return { app, stack, endpoint, data, batch, template: Template.fromStack(stack) };
}

/**
 * The state machine's definition as CloudFormation would give it to Step Functions: the partition
 * `aws`, every other reference (bucket names, the alias's ARN) a function ARN.
 */
function definitionOf(template: Template): Record<string, any> {
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  expect(machines).toHaveLength(1);
  const body = machines[0].Properties.DefinitionString;
  const parts: unknown[] = body['Fn::Join'] ? body['Fn::Join'][1] : [body];
  const text = parts.map((p) => (typeof p === 'string' ? p : (p as { Ref?: string }).Ref === 'AWS::Partition' ? 'aws' : FUNCTION_ARN)).join('');
  return JSON.parse(text);
}

const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:inference:live';

describe('BatchInference', () => {
  it('is a Distributed Map that reads the input from S3, batches, invokes the live alias and writes its results', () => {
    const { stack, template, endpoint } = batchStack();
    const asl = definitionOf(template);
    const map = asl.States.Score;
    expect(map.Type).toBe('Map');
    expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
    expect(map.ItemReader).toMatchObject({ Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { 'Key.$': '$.inputKey' } });
    expect(map.ItemSelector).toEqual({ 'index.$': '$$.Map.Item.Index', 'value.$': '$$.Map.Item.Value' });
    expect(map.ItemBatcher).toMatchObject({ MaxItemsPerBatch: 500, MaxInputBytesPerBatch: 200 * 1024, BatchInput: { kind: BATCH_KIND, 'outputPrefix.$': '$.outputPrefix' } });
    expect(map.MaxConcurrency).toBe(50);
    expect(map.ToleratedFailurePercentage).toBe(5);
    expect(map.ResultWriter).toMatchObject({ Resource: 'arn:aws:states:::s3:putObject', Parameters: { Prefix: 'batch-output/map-runs' } });
    const task = map.ItemProcessor.States[map.ItemProcessor.StartAt];
    expect(task.Resource).toBe(FUNCTION_ARN);
    // The batch goes to the function as it is: no Parameters (a string `$` there is sent literally).
    expect(task.Parameters).toBeUndefined();
    expect(task.Retry.map((r: { ErrorEquals: string[] }) => r.ErrorEquals)).toContainEqual(['InferenceServerError']);
    expect(asl.States.Assemble.Parameters).toMatchObject({ kind: BATCH_ASSEMBLE_KIND, 'outputPrefix.$': '$.outputPrefix', 'resultWriter.$': '$.map.ResultWriterDetails' });
    // The alias, not the function's $LATEST.
    const invokes = roleStatements(template, stackRole(stack)).filter((s) => s.Action === 'lambda:InvokeFunction');
    expect(JSON.stringify(invokes)).toContain(ref(endpoint.inferenceFunction.alias).Ref);
  });

  it('passes a real Amazon States Language validator', () => {
    const { template } = batchStack({ inputFormat: BatchInputFormat.CSV, joinInput: true });
    const asl = definitionOf(template);
    const result = aslValidator(asl);
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
    expect(asl.States.Score.ItemReader.ReaderConfig).toEqual({ InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' });
    expect(asl.States.Score.ItemBatcher.BatchInput.joinInput).toBe(true);
  });

  it('merges the execution input over the defaults, and refuses an output prefix the function may not write under', () => {
    const { template } = batchStack({ outputPrefix: 'scores/' });
    const asl = definitionOf(template);
    expect(asl.States.Defaults.Parameters).toEqual({ inputKey: 'rows.jsonl', 'outputPrefix.$': "States.Format('scores/{}/', $$.Execution.Name)" });
    expect(asl.States.Settings.Parameters).toEqual({ 'job.$': 'States.JsonMerge($, $$.Execution.Input, false)' });
    expect(asl.States.CheckOutputPrefix.Choices[0]).toMatchObject({ Variable: '$.outputPrefix', StringMatches: 'scores/*/' });
    expect(asl.States.CheckOutputPrefix.Default).toBe('OutputPrefixRefused');
  });

  it('lets the function write only under the output prefix, and grants start to whoever asks', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    const batch = new BatchInference(stack, 'Batch', { inferenceFunction: endpoint.inferenceFunction, inputBucket: new s3.Bucket(stack, 'Data'), outputPrefix: 'scores/' });
    batch.grantStartExecution(new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() }));
    const template = Template.fromStack(stack);
    const statements = roleStatements(template, endpoint.inferenceFunction.role);
    const s3Resources = JSON.stringify(statements.filter((s) => JSON.stringify(s.Action).includes('s3:')).map((s) => s.Resource));
    expect(s3Resources).toContain('/scores/*');
    expect(s3Resources).not.toMatch(/"\/\*"/);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).toContain('states:StartExecution');
  });

  it('starts on a schedule and on uploads under a prefix, with the uploaded key as the input', () => {
    const { template } = batchStack({ schedule: events.Schedule.cron({ hour: '2', minute: '0' }), startOnUploadPrefix: 'incoming/' });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(0 2 * * ? *)' });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.s3'], 'detail-type': ['Object Created'], detail: { object: { key: [{ prefix: 'incoming/' }] } } },
      Targets: [Match.objectLike({ InputTransformer: Match.objectLike({ InputPathsMap: { 'detail-object-key': '$.detail.object.key' } }) })],
    });
  });

  it('alarms on failed and timed-out executions, and graphs rows per second', () => {
    const { template, batch } = batchStack({ monitoring: {} });
    expect(Object.keys(batch.alarms)).toEqual(['ExecutionsFailed', 'ExecutionsTimedOut']);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsFailed', Namespace: 'AWS/States' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsTimedOut', Namespace: 'AWS/States' });
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'))).toContain('BatchItems');
  });

  it('sizes the default concurrency to the function’s reserved concurrency', () => {
    const { app, stack } = newStack();
    void app;
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), reservedConcurrentExecutions: 20 });
    new BatchInference(stack, 'Batch', { inferenceFunction: endpoint.inferenceFunction, inputBucket: new s3.Bucket(stack, 'Data') });
    expect(definitionOf(Template.fromStack(stack)).States.Score.MaxConcurrency).toBe(20);
  });

  it('has no unacknowledged cdk-nag finding', () => {
    const { app } = batchStack({ monitoring: {}, schedule: events.Schedule.rate(Duration.days(1)) });
    expect(nagFindings(app)).toEqual([]);
  });

  it.each([
    [{ itemsPerBatch: 0 }, /itemsPerBatch must be a whole number from 1 to 100000000, got: 0 Stack\/Batch ValidationError/],
    [{ maxBatchSize: Size.kibibytes(300) }, /maxBatchSize \(in bytes\) must be a whole number from 1 to 262144 \(Step Functions' 256 KiB/],
    [{ maxConcurrency: 20_000 }, /maxConcurrency must be a whole number from 1 to 10000/],
    [{ toleratedFailurePercentage: 101 }, /toleratedFailurePercentage must be a whole number from 0 to 100, got: 101/],
    [{ outputPrefix: 'scores' }, /outputPrefix must end with '\/', got: scores/],
  ])('refuses %j at synth, naming the prop and the limit', (props, message) => {
    const e = thrown(() => batchStack(props as Partial<BatchInferenceProps>));
    expect(`${e.message} ${e.constructPath ?? ''} ${e.name}`).toMatch(message);
  });
});

function stackRole(stack: Stack) {
  const sm = stack.node.findAll().find((c) => c.node.path.endsWith('/Batch/StateMachine/Role'));
  if (!sm) throw new Error('no state machine role');
  return sm;
}
