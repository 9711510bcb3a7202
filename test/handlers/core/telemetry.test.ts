/**
 * The handler's embedded metrics: one log line per invocation with what it recorded, none when
 * Powertools' metrics are disabled, and none lost when invocations overlap.
 */
import { describe, expect, it } from 'vitest';
import { mlpModel } from '../../../tools/onnx';
import { infer, restEvent } from '../../../fixtures/events';
import { type Handler, handlerForModel } from '../../support/handler';
import { logged } from '../../support/logs';

const mlp = mlpModel({ seed: 3 });
const request = { inputs: [{ name: 'input', shape: [1, mlp.inputs], datatype: 'FP32', data: [0.5, -0.25, 1, 0] }] };

/** A handler made with POWERTOOLS_METRICS_DISABLED as given: Powertools reads it when Metrics is created. */
async function handlerWithMetrics(disabled: string): Promise<Handler> {
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = disabled;
  try {
    return await handlerForModel(mlp.bytes, { MODEL_NAME: 'telemetry' });
  } finally {
    process.env.POWERTOOLS_METRICS_DISABLED = saved;
  }
}

const emf = (logs: any[]) => logs.filter((l) => l._aws?.CloudWatchMetrics);

describe('embedded metrics', () => {
  it('writes one line per invocation: ColdStart on the first, InferenceMs on each infer', async () => {
    const handler = await handlerWithMetrics('false');
    const { logs } = await logged(async () => {
      for (let i = 0; i < 3; i++) expect((await infer(handler, request, 'telemetry')).status).toBe(200);
      await handler(restEvent('GET', '/v2/health/ready'));
    });
    const lines = emf(logs);
    expect(lines).toHaveLength(3);
    expect(lines[0].ColdStart).toBe(1);
    expect(lines.slice(1).every((l) => l.ColdStart === undefined)).toBe(true);
    for (const l of lines) {
      expect(typeof l.InferenceMs).toBe('number');
      expect(l.model).toBe('telemetry');
      expect(l._aws.CloudWatchMetrics[0].Namespace).toBe('CdkServerlessInference');
    }
  });

  it('loses no figure when invocations overlap', async () => {
    const handler = await handlerWithMetrics('false');
    const { logs } = await logged(() => Promise.all(Array.from({ length: 6 }, () => infer(handler, request, 'telemetry'))));
    const figures = emf(logs).flatMap((l) => [l.InferenceMs].flat());
    expect(figures).toHaveLength(6);
    expect(figures.every((v) => typeof v === 'number')).toBe(true);
  });

  it('writes none when POWERTOOLS_METRICS_DISABLED is true', async () => {
    const handler = await handlerWithMetrics('true');
    const { logs } = await logged(async () => {
      expect((await infer(handler, request, 'telemetry')).status).toBe(200);
    });
    expect(emf(logs)).toHaveLength(0);
  });
});
