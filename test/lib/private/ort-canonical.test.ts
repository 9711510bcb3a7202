import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { canonicalizeOrtFile, canonicalOrtModel, readOrtResolver, relayOrtModel } from '../../../lib/private/ort-canonical';
import { convModel, dynamicQuantMatMulModel, mulberry32, stringOpsModel } from '../../../tools/onnx';
import { embeddingStackModel } from '../../../tools/onnx/serving-models';
import { tempDir, writeModel } from '../../support/handler';
import { convertToOrt as convert } from '../../support/ort-format';

const ort = require('onnxruntime-node') as typeof Ort;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sorted = (names: readonly string[]) => [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** The handler's session options for a precompiled model (handlers/core/model-runtime.ts). */
const ORT_OPTIONS: Ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  enableCpuMemArena: false,
  logSeverityLevel: 3,
  extra: { session: { load_model_format: 'ORT', use_memory_mapped_ort_model: '1', use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } },
};

const MODELS: Array<[string, () => Uint8Array]> = [
  ['the demo model', () => fs.readFileSync(DEMO_MODEL_FILE)],
  ['a dynamically quantized MatMul', () => dynamicQuantMatMulModel().bytes],
  ['string operators', () => stringOpsModel().bytes],
  ['a Conv', () => convModel().bytes],
];

describe('canonical ORT format bytes', () => {
  const onnx = new Map<string, string>();
  const raw = new Map<string, Buffer>();
  beforeAll(() => {
    for (const [name, bytes] of MODELS) {
      onnx.set(name, writeModel(bytes()));
      raw.set(name, convert(onnx.get(name)!));
    }
  });

  it.each(MODELS.slice(0, 3))('%s: ten conversions in ten processes give one canonical file', (name) => {
    const canonical = new Set([sha256(canonicalOrtModel(raw.get(name)!))]);
    for (let i = 1; i < 10; i++) {
      canonical.add(sha256(canonicalOrtModel(convert(onnx.get(name)!))));
    }
    expect(canonical.size).toBe(1);
  });

  it.each(MODELS)('%s: the canonical file loads with the handler options and answers as onnxruntime’s own, bit for bit', async (name) => {
    const dir = tempDir();
    const written = path.join(dir, 'written.ort');
    const canonical = path.join(dir, 'canonical.ort');
    fs.writeFileSync(written, raw.get(name)!);
    fs.writeFileSync(canonical, canonicalOrtModel(raw.get(name)!));
    const a = await ort.InferenceSession.create(written, ORT_OPTIONS);
    const b = await ort.InferenceSession.create(canonical, ORT_OPTIONS);
    expect(b.inputMetadata).toEqual(a.inputMetadata);
    expect(b.outputMetadata).toEqual(a.outputMetadata);
    const random = mulberry32(7);
    const feeds: Record<string, Ort.Tensor> = {};
    for (const m of a.inputMetadata) {
      if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
      const dims = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 2));
      const n = dims.reduce((x, y) => x * y, 1);
      feeds[m.name] =
        m.type === 'string'
          ? new ort.Tensor(
              'string',
              Array.from({ length: n }, (_, i) => ['onnx', 'Lambda', '模型'][i % 3]),
              dims,
            )
          : new ort.Tensor(
              'float32',
              Float32Array.from({ length: n }, () => random() * 4 - 2),
              dims,
            );
    }
    const [x, y] = [await a.run(feeds), await b.run(feeds)];
    for (const key of Object.keys(x)) {
      const bytes = (t: Ort.Tensor) => (Array.isArray(t.data) ? JSON.stringify(t.data) : Buffer.from((t.data as Uint8Array).buffer).toString('hex'));
      expect(bytes(y[key] as Ort.Tensor), key).toBe(bytes(x[key] as Ort.Tensor));
    }
    await a.release();
    await b.release();
  });

  it('lays out operators and kernel type strings in sorted order, whatever order they came in', () => {
    const written = raw.get('a dynamically quantized MatMul')!;
    // As a process whose hash order is the reverse of the sorted one would write it.
    const reversed = relayOrtModel(written, (a, b) => -Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const reversedOps = readOrtResolver(reversed).ops.map((op) => op.opId);
    expect(reversedOps.length).toBeGreaterThan(2);
    expect(reversedOps).not.toEqual(sorted(reversedOps));

    const canonical = canonicalOrtModel(reversed);
    expect(canonical.equals(reversed)).toBe(false);
    expect(canonical.equals(canonicalOrtModel(written))).toBe(true);
    const { ops } = readOrtResolver(canonical);
    expect(ops.map((op) => op.opId)).toEqual(sorted(reversedOps));
    for (const op of ops) {
      expect(op.kernelTypeStrs.map((k) => k.name)).toEqual(sorted(op.kernelTypeStrs.map((k) => k.name)));
    }
    // The content is the same: operators, kernel type strings, argument lists in their order.
    const content = (m: Buffer) =>
      readOrtResolver(m)
        .ops.map((op) => [op.opId, ...op.kernelTypeStrs.map((k) => `${k.name}=[${k.args.join(',')}]`).sort()].join(' '))
        .sort();
    expect(content(canonical)).toEqual(content(written));
    expect(content(canonical).join('\n')).toMatch(/T1=\[input 0\]/);
  });

  it('keeps the model’s bytes as they are, after a head whose size alone makes the file a multiple of 64 bytes', () => {
    const written = raw.get('the demo model')!;
    const canonical = canonicalOrtModel(written);
    const { modelArea } = readOrtResolver(written);
    const model = written.subarray(modelArea);
    expect(canonical.subarray(canonical.length - model.length).equals(model)).toBe(true);
    expect(canonical.length % 64).toBe(0);
    expect(readOrtResolver(canonical).modelArea).toBe(canonical.length - model.length);
    expect(canonicalOrtModel(canonical).equals(canonical)).toBe(true);
  });

  it('rewrites a file as it rewrites bytes, reading only the head of a large one', () => {
    // A 256 KiB embedding table: the model spans several pages of the file reader.
    const written = convert(writeModel(embeddingStackModel({ vocabulary: 512, width: 128 }).bytes));
    expect(written.length).toBeGreaterThan(4 * 64 * 1024);
    const file = path.join(tempDir(), 'model.ort');
    fs.writeFileSync(
      file,
      relayOrtModel(written, (a, b) => -Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    canonicalizeOrtFile(file);
    expect(fs.readFileSync(file).equals(canonicalOrtModel(written))).toBe(true);
  });

  it('refuses what is not laid out as onnxruntime lays it out, rather than guess', () => {
    const canonical = canonicalOrtModel(raw.get('the demo model')!);
    expect(() => canonicalOrtModel(Buffer.from(fs.readFileSync(DEMO_MODEL_FILE)))).toThrow(/no "ORTM" file identifier/);
    expect(() => canonicalOrtModel(canonical.subarray(0, 64))).toThrow(/outside the file/);
    // A byte of the head that belongs to no object of the root's or the resolver's.
    const unknown = Buffer.from(canonical);
    unknown[readOrtResolver(canonical).modelArea - 1] = 0x5a;
    expect(() => canonicalOrtModel(unknown)).toThrow(/byte \d+ of the head belongs to no object|not NUL-terminated/);
  });
});
