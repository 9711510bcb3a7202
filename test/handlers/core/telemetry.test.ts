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
async function handlerWithMetrics(disabled: string, env: Record<string, string> = {}): Promise<Handler> {
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = disabled;
  try {
    return await handlerForModel(mlp.bytes, { MODEL_NAME: 'telemetry', ...env });
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

  it('names the service and the namespace as the configuration says (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE)', async () => {
    const handler = await handlerWithMetrics('false', { POWERTOOLS_SERVICE_NAME: 'configured-service', POWERTOOLS_METRICS_NAMESPACE: 'ConfiguredNamespace' });
    const { logs } = await logged(async () => {
      expect((await infer(handler, request, 'telemetry')).status).toBe(200);
    });
    const [line] = emf(logs);
    expect(line._aws.CloudWatchMetrics[0].Namespace).toBe('ConfiguredNamespace');
    expect(line.service).toBe('configured-service');
  });

  it('writes none when POWERTOOLS_METRICS_DISABLED is true', async () => {
    const handler = await handlerWithMetrics('true');
    const { logs } = await logged(async () => {
      expect((await infer(handler, request, 'telemetry')).status).toBe(200);
    });
    expect(emf(logs)).toHaveLength(0);
  });
});

describe("onnxruntime's own telemetry", () => {
  it('is set as the configuration says (off unless ORT_DISABLE_TELEMETRY says otherwise), where onnxruntime reads it', async () => {
    const saved = process.env.ORT_DISABLE_TELEMETRY;
    try {
      delete process.env.ORT_DISABLE_TELEMETRY;
      await handlerForModel(mlp.bytes);
      expect(process.env.ORT_DISABLE_TELEMETRY).toBe('1');

      await handlerForModel(mlp.bytes, { ORT_DISABLE_TELEMETRY: '0' });
      expect(process.env.ORT_DISABLE_TELEMETRY).toBe('0');
    } finally {
      process.env.ORT_DISABLE_TELEMETRY = saved;
      if (saved === undefined) delete process.env.ORT_DISABLE_TELEMETRY;
    }
  });
});
