/**
 * Open Inference Protocol requests for the reliability tests: valid ones, each with the answer the
 * model's plain-JS reference gives, and (in reliability-bad-requests.ts) ones broken in one known
 * way. A request is built from a `Draft` so that the answer can be computed from the same values.
 */
import fc from 'fast-check';
import { mlpModel, multiIoModel } from '../../tools/onnx';

export type Datatype = 'FP32' | 'FP16' | 'INT64' | 'BOOL' | 'BYTES';

export interface InputSpec {
  readonly name: string;
  readonly datatype: Datatype;
  /** `batch` is the symbolic dimension that every input of a model shares. */
  readonly dims: ReadonlyArray<number | 'batch'>;
  /** Values the datatype takes, exactly (no rounding on the way to the model). */
  readonly value: fc.Arbitrary<unknown>;
}

export interface ExpectedOutput {
  readonly shape: number[];
  readonly data: unknown[];
  /** Absolute tolerance for numbers; exact when absent. */
  readonly tolerance?: number;
}

export interface ModelUnderTest {
  /** The model's name in the routes. */
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly inputs: readonly InputSpec[];
  readonly outputs: readonly string[];
  /** The reference's answer for these (flat, row-major) input values. */
  expected(values: ReadonlyMap<string, readonly unknown[]>, batch: number): Map<string, ExpectedOutput>;
  /** A request that must keep getting the right answer whatever came before it. */
  readonly fixed: Draft;
}

/** What a request is made of. */
export interface Draft {
  readonly batch: number;
  /** Flat, row-major values of each input. */
  readonly values: ReadonlyMap<string, readonly unknown[]>;
  /** `instances` only for a model with one input. */
  readonly form: 'oip' | 'instances';
  /** The order of the inputs in the request. */
  readonly order: readonly string[];
  /** Data sent nested by rows rather than flat. */
  readonly nested: boolean;
  readonly id?: string;
  /** Outputs asked for, in this order; all of them when absent or empty. */
  readonly outputs?: readonly string[];
  /** Fields the protocol does not define, which the handler must ignore. */
  readonly extraRoot?: Record<string, unknown>;
  readonly extraTensor?: Record<string, unknown>;
}

export function shapeOf(spec: InputSpec, batch: number): number[] {
  return spec.dims.map((d) => (d === 'batch' ? batch : d));
}

export function countOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function rowsOf<T>(flat: readonly T[], batch: number): T[][] {
  const width = flat.length / batch;
  return Array.from({ length: batch }, (_, i) => flat.slice(i * width, (i + 1) * width));
}

/** The request body a draft stands for. */
export function render(model: ModelUnderTest, draft: Draft): Record<string, any> {
  if (draft.form === 'instances') {
    const [spec] = model.inputs;
    return { instances: rowsOf(draft.values.get(spec.name)!, draft.batch), ...draft.extraRoot };
  }
  const inputs = draft.order.map((name) => {
    const spec = model.inputs.find((s) => s.name === name)!;
    const flat = draft.values.get(name)!;
    return {
      name,
      datatype: spec.datatype,
      shape: shapeOf(spec, draft.batch),
      data: draft.nested ? rowsOf(flat, draft.batch) : [...flat],
      ...draft.extraTensor,
    };
  });
  return {
    ...(draft.id !== undefined ? { id: draft.id } : {}),
    inputs,
    ...(draft.outputs !== undefined ? { outputs: draft.outputs.map((name) => ({ name })) } : {}),
    ...draft.extraRoot,
  };
}

/**
 * What is wrong with an answer to a draft's request, or undefined when it is the reference's
 * answer: status, model name, echoed id, the outputs asked for in their order, shapes and values.
 */
export function answerMismatch(model: ModelUnderTest, draft: Draft, status: number, text: string): string | undefined {
  if (status !== 200) return `status ${status}: ${text.slice(0, 300)}`;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 300)}`;
  }
  const expected = model.expected(draft.values, draft.batch);
  if (draft.form === 'instances') {
    if (!Array.isArray(body.predictions) || body.predictions.length !== draft.batch) return `predictions: ${text.slice(0, 300)}`;
    for (const [name, out] of expected) {
      const width = countOf(out.shape.slice(1));
      for (let row = 0; row < draft.batch; row++) {
        const got = [body.predictions[row][name]].flat();
        const bad = valuesMismatch(got, out.data.slice(row * width, (row + 1) * width), out.tolerance);
        if (bad) return `prediction ${row} '${name}': ${bad}`;
      }
    }
    return undefined;
  }
  if (body.model_name !== model.name) return `model_name ${body.model_name}`;
  if (body.id !== draft.id) return `id ${JSON.stringify(body.id)} instead of ${JSON.stringify(draft.id)}`;
  const asked = draft.outputs?.length ? draft.outputs : model.outputs;
  const names = (body.outputs ?? []).map((o: any) => o.name);
  if (JSON.stringify(names) !== JSON.stringify(asked)) return `outputs ${JSON.stringify(names)} instead of ${JSON.stringify(asked)}`;
  for (const o of body.outputs) {
    const out = expected.get(o.name)!;
    if (JSON.stringify(o.shape) !== JSON.stringify(out.shape)) return `'${o.name}' shape [${o.shape}] instead of [${out.shape}]`;
    const bad = valuesMismatch(o.data, out.data, out.tolerance);
    if (bad) return `'${o.name}': ${bad}`;
  }
  return undefined;
}

function valuesMismatch(got: unknown, want: readonly unknown[], tolerance: number | undefined): string | undefined {
  if (!Array.isArray(got) || got.length !== want.length) return `${JSON.stringify(got)} instead of ${JSON.stringify(want)}`;
  for (let i = 0; i < want.length; i++) {
    const ok =
      tolerance !== undefined && typeof want[i] === 'number' ? typeof got[i] === 'number' && Math.abs((got[i] as number) - (want[i] as number)) <= tolerance : got[i] === want[i];
    if (!ok) return `index ${i} is ${JSON.stringify(got[i])} instead of ${JSON.stringify(want[i])}`;
  }
  return undefined;
}

/** Top-level and tensor fields the protocol defines; any other name is an unknown field. */
export const ROOT_FIELDS = ['id', 'inputs', 'outputs', 'parameters', 'instances'];
export const TENSOR_FIELDS = ['name', 'shape', 'datatype', 'data', 'parameters'];

/**
 * Names every object has by inheritance (`name in {}` is true for each): as field names, values,
 * tensor, output and model names, they must mean nothing more than any other string.
 */
export const INHERITED_NAMES = [
  'toString',
  'constructor',
  '__proto__',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupSetter__',
];

/** Fields the protocol does not define, some named as inherited properties, each its own (`__proto__` included). */
const unknownFields = (known: readonly string[]) =>
  fc
    .uniqueArray(
      fc.tuple(
        fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom(...INHERITED_NAMES)).filter((k) => !known.includes(k)),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      { maxLength: 3, selector: ([k]) => k },
    )
    .map((entries) => Object.fromEntries(entries));

/** Valid requests to a model, with unknown fields, any input order, flat or nested data. */
export function validDraft(model: ModelUnderTest): fc.Arbitrary<Draft> {
  const names = model.inputs.map((s) => s.name);
  return fc.integer({ min: 1, max: 3 }).chain((batch) =>
    fc.record({
      batch: fc.constant(batch),
      values: fc
        .tuple(...model.inputs.map((s) => fc.array(s.value, { minLength: countOf(shapeOf(s, batch)), maxLength: countOf(shapeOf(s, batch)) })))
        .map((arrays) => new Map(names.map((n, i) => [n, arrays[i]]))),
      form: model.inputs.length === 1 ? fc.constantFrom('oip' as const, 'instances' as const) : fc.constant('oip' as const),
      order: fc.shuffledSubarray(names, { minLength: names.length, maxLength: names.length }),
      nested: fc.boolean(),
      id: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
      outputs: fc.option(fc.shuffledSubarray([...model.outputs]), { nil: undefined }),
      extraRoot: unknownFields(ROOT_FIELDS),
      extraTensor: unknownFields(TENSOR_FIELDS),
    }),
  );
}

const float32 = fc.float({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true });

/** The MLP with a label output: FP32 in, FP32 probabilities and an INT64 label out. */
export function mlpUnderTest(name = 'mlp'): ModelUnderTest & { readonly reference: ReturnType<typeof mlpModel> } {
  const reference = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 11, label: true });
  const rows = [
    [0.5, -1.2, 3.3, 0.7],
    [1.0, 0.2, -0.4, 2.5],
  ].map((r) => r.map(Math.fround));
  return {
    name,
    bytes: reference.bytes,
    reference,
    inputs: [{ name: 'input', datatype: 'FP32', dims: ['batch', 4], value: float32 }],
    outputs: ['probabilities', 'label'],
    expected(values, batch) {
      const x = rowsOf(values.get('input')! as number[], batch);
      return new Map([
        ['probabilities', { shape: [batch, 3], data: reference.predict(x).flat(), tolerance: 1e-5 }],
        ['label', { shape: [batch], data: reference.predictLabels(x) }],
      ]);
    },
    fixed: { batch: 2, values: new Map([['input', rows.flat()]]), form: 'oip', order: ['input'], nested: false, id: 'fixed' },
  };
}

/** Halves in quarter steps up to ±500: exact in float16, and so is each plus 0.5. */
const quarter = fc.integer({ min: -2000, max: 2000 }).map((k) => k / 4);
/** Ids whose double is still a safe integer, as JSON numbers or as the decimal strings INT64 accepts. */
const id64 = fc.bigInt({ min: -(2n ** 51n), max: 2n ** 51n }).chain((b) => fc.constantFrom<unknown>(Number(b), b.toString()));

/** Four inputs of four datatypes (INT64, BOOL, BYTES, FP16), outputs computed by hand. */
export function multiIoUnderTest(name = 'multi'): ModelUnderTest {
  const model = multiIoModel();
  return {
    name,
    bytes: model.bytes,
    inputs: [
      { name: 'ids', datatype: 'INT64', dims: ['batch', 4], value: id64 },
      { name: 'mask', datatype: 'BOOL', dims: ['batch', 4], value: fc.boolean() },
      // onnxruntime cannot carry a NUL or a lone surrogate: the handler refuses those (see the bad requests).
      { name: 'text', datatype: 'BYTES', dims: ['batch'], value: fc.string({ maxLength: 8, unit: 'grapheme' }).filter((s) => !s.includes('\u0000')) },
      { name: 'halves', datatype: 'FP16', dims: ['batch', 2], value: quarter },
    ],
    outputs: ['ids_times_two', 'mask_inverted', 'text_echo', 'halves_plus_half', 'halves_plus_half_fp16'],
    expected(values, batch) {
      const halves = values.get('halves')!.map((h) => (h as number) + model.halvesAddend);
      return new Map([
        ['ids_times_two', { shape: [batch, 4], data: values.get('ids')!.map((v) => Number(BigInt(v as number | string) * BigInt(model.idsFactor))) }],
        ['mask_inverted', { shape: [batch, 4], data: values.get('mask')!.map((m) => !m) }],
        ['text_echo', { shape: [batch], data: [...values.get('text')!] }],
        ['halves_plus_half', { shape: [batch, 2], data: halves }],
        ['halves_plus_half_fp16', { shape: [batch, 2], data: halves }],
      ]);
    },
    fixed: {
      batch: 2,
      values: new Map<string, unknown[]>([
        ['ids', [1, -2, '3000000000000', 4, 5, 6, 7, '-8']],
        ['mask', [true, false, true, false, false, false, true, true]],
        ['text', ['héllo', '😀']],
        ['halves', [0.25, -1.5, 100, 0]],
      ]),
      form: 'oip',
      order: ['text', 'ids', 'halves', 'mask'],
      nested: true,
      id: 'fixed',
    },
  };
}
