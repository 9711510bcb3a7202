/**
 * Requests broken in one known way each, most of them built from a valid draft so that only that
 * one thing is wrong: the status the handler must answer (docs/protocol.md, "Errors") and what its message
 * must name.
 */
import fc from 'fast-check';
import { type Datatype, type Draft, INHERITED_NAMES, type InputSpec, type ModelUnderTest, countOf, render, shapeOf, validDraft } from './reliability-requests';

export interface BadRequest {
  readonly what: string;
  /** The body as sent. */
  readonly text: string;
  /** The Content-Type header; application/json when absent. */
  readonly contentType?: string;
  /** `encode`: sent base64-encoded, as API Gateway sends binary media; `raw`: marked base64 but sent as it is. */
  readonly base64?: 'encode' | 'raw';
  readonly status: number;
  /** What the error message must contain. */
  readonly mentions: ReadonlyArray<string>;
}

const PROTOCOL_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'];

const smallObject = fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 });
const notArray = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), smallObject);
const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), smallObject);
const notObject = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));

/**
 * Values JSON can carry that the datatype must refuse: "NaN" and the infinities are floats only
 * (and only as those exact strings, not "toString" or another name every object inherits), and
 * BYTES cannot hold a NUL or a lone surrogate.
 */
const NOT_OF_TYPE: Record<Datatype, unknown[]> = {
  INT64: [
    'NaN',
    'Infinity',
    '-Infinity',
    1.5,
    -0.25,
    2 ** 60,
    -(2 ** 60),
    '1.5',
    '0x10',
    '1e3',
    '',
    ' 1',
    '+1',
    true,
    null,
    {},
    '9223372036854775808',
    '-9223372036854775809',
    '123456789012345678901',
    ...INHERITED_NAMES,
  ],
  BOOL: ['true', 'false', 1, 0, 'NaN', 'Infinity', null, {}, '1', ...INHERITED_NAMES],
  FP16: ['nan', 'inf', '-inf', 'NAN', '+Infinity', 65520, -70000, 1e6, true, null, {}, '1', '', ...INHERITED_NAMES],
  FP32: ['nan', 'Inf', '+Infinity', 3.5e38, -1e39, true, null, {}, '1', '', ...INHERITED_NAMES],
  BYTES: [1, 0, 1.5, true, false, null, {}, 'a\u0000b', '\u0000', 'x\ud800', '\udc00y'],
};

/** Number tokens JSON does not have (the text is not JSON), and ones that parse to ±Infinity. */
const NOT_JSON_TOKENS = ['NaN', 'Infinity', '-Infinity', '+1', '0x1F', '.5'];
const INFINITE_TOKENS = ['1e999', '-1e999'];

/** Stands for a raw token in a body: replaced in its JSON text. */
const MARKER = '\u0001raw\u0001';

type Body = Record<string, any>;

interface Mutation {
  readonly what: string;
  readonly mentions: string[];
  readonly apply: (body: Body) => void;
  /** A number token written where the mutation put MARKER. */
  readonly token?: string;
}

function mutated(model: ModelUnderTest, draft: Draft, m: Mutation): BadRequest {
  const body = render(model, draft);
  m.apply(body);
  let text = JSON.stringify(body);
  if (m.token !== undefined) text = text.replace(JSON.stringify(MARKER), m.token);
  return { what: m.what, text, status: 400, mentions: m.mentions };
}

/** Valid OIP drafts with flat data, so that a value's index in `data` is its flat index. */
const oipDraft = (model: ModelUnderTest) => validDraft(model).map((d): Draft => ({ ...d, form: 'oip', nested: false }));

function tensorMutations(model: ModelUnderTest, draft: Draft): fc.Arbitrary<Mutation> {
  const names = model.inputs.map((s) => s.name);
  const spec = fc.constantFrom(...model.inputs);
  const at = (s: InputSpec) => draft.order.indexOf(s.name);
  const tensor = (b: Body, s: InputSpec) => b.inputs[at(s)];
  const input = (s: InputSpec) => `input '${s.name}'`;
  return fc.oneof(
    fc.oneof(notArray, fc.constant([])).map((v) => ({ what: `inputs = ${JSON.stringify(v)}`, mentions: ["'inputs'"], apply: (b: Body) => void (b.inputs = v) })),
    fc.constant<Mutation>({ what: 'no inputs', mentions: ["no 'inputs'"], apply: (b: Body) => void delete b.inputs }),
    fc.constant<Mutation>({ what: 'inputs and instances', mentions: ["both 'inputs' and 'instances'"], apply: (b: Body) => void (b.instances = [[1]]) }),
    fc.tuple(spec, notObject).map(([s, v]) => ({ what: `a tensor is ${JSON.stringify(v)}`, mentions: [`inputs[${at(s)}]`], apply: (b: Body) => void (b.inputs[at(s)] = v) })),
    fc.tuple(spec, fc.option(notString, { nil: undefined })).map(([s, v]) => ({
      what: `name = ${JSON.stringify(v)}`,
      mentions: [`inputs[${at(s)}]`],
      apply: (b: Body) => void (tensor(b, s).name = v),
    })),
    fc
      .tuple(
        spec,
        fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...INHERITED_NAMES)).filter((n) => !names.includes(n)),
      )
      .map(([s, n]) => ({
        what: `unknown input ${JSON.stringify(n)}`,
        mentions: [`unknown input '${n}'`, ...names.map((x) => `'${x}'`)],
        apply: (b: Body) => void (tensor(b, s).name = n),
      })),
    fc
      .tuple(
        spec,
        fc.oneof(
          notString,
          fc.oneof(fc.string(), fc.constantFrom(...INHERITED_NAMES)).filter((t) => !PROTOCOL_DATATYPES.includes(t)),
        ),
      )
      .map(([s, v]) => ({
        what: `datatype = ${JSON.stringify(v)}`,
        mentions: [input(s), 'datatype'],
        apply: (b: Body) => void (tensor(b, s).datatype = v),
      })),
    spec.chain((s) =>
      fc.constantFrom(...PROTOCOL_DATATYPES.filter((t) => t !== s.datatype)).map((t) => ({
        what: `${s.name} sent as ${t}`,
        mentions: [input(s), `expects datatype ${s.datatype}, got: ${t}`],
        apply: (b: Body) => void (tensor(b, s).datatype = t),
      })),
    ),
    fc.tuple(spec, fc.option(notArray, { nil: undefined })).map(([s, v]) => ({
      what: `shape = ${JSON.stringify(v)}`,
      mentions: [input(s), 'shape'],
      apply: (b: Body) => void (tensor(b, s).shape = v),
    })),
    fc.tuple(spec, fc.option(notArray, { nil: undefined })).map(([s, v]) => ({
      what: `data = ${JSON.stringify(v)}`,
      mentions: [input(s), 'data must be an array'],
      apply: (b: Body) => void (tensor(b, s).data = v),
    })),
    notString.map((v) => ({ what: `id = ${JSON.stringify(v)}`, mentions: ["'id'"], apply: (b: Body) => void (b.id = v) })),
    notObject.map((v) => ({ what: `parameters = ${JSON.stringify(v)}`, mentions: ["'parameters'"], apply: (b: Body) => void (b.parameters = v) })),
    notArray.map((v) => ({ what: `outputs = ${JSON.stringify(v)}`, mentions: ["'outputs'"], apply: (b: Body) => void (b.outputs = v) })),
    fc
      .oneof(
        notObject,
        notString.map((n) => ({ name: n })),
      )
      .map((v) => ({
        what: `outputs[0] = ${JSON.stringify(v)}`,
        mentions: ['outputs[0]'],
        apply: (b: Body) => void (b.outputs = [v]),
      })),
    fc
      .oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...INHERITED_NAMES))
      .filter((n) => !model.outputs.includes(n))
      .map((n) => ({
        what: `unknown output ${JSON.stringify(n)}`,
        mentions: [`unknown output '${n}'`],
        apply: (b: Body) => void (b.outputs = [{ name: n }]),
      })),
    spec.map((s) => ({
      what: `${s.name} left out`,
      mentions: names.length > 1 ? [`missing input '${s.name}'`] : ["'inputs'"],
      apply: (b: Body) => void b.inputs.splice(at(s), 1),
    })),
    spec.map((s) => ({ what: `${s.name} twice`, mentions: [`'${s.name}' is given more than once`], apply: (b: Body) => void b.inputs.push(structuredClone(tensor(b, s))) })),
  );
}

function valueMutations(draft: Draft, s: InputSpec): fc.Arbitrary<Mutation> {
  const n = countOf(shapeOf(s, draft.batch));
  const at = (b: Body) => b.inputs[draft.order.indexOf(s.name)];
  const named = (k: number) => [`input '${s.name}' (${s.datatype}): value at index ${k}`];
  return fc
    .tuple(
      fc.nat({ max: n - 1 }),
      fc.oneof(
        fc.constantFrom(...NOT_OF_TYPE[s.datatype]),
        fc.constantFrom(...NOT_JSON_TOKENS, ...INFINITE_TOKENS).map((t) => ({ token: t })),
      ),
    )
    .map(([k, v]) => {
      const token = typeof v === 'object' && v !== null && 'token' in v ? (v.token as string) : undefined;
      return {
        what: `${s.name}[${k}] = ${token ?? JSON.stringify(v)}`,
        mentions: token !== undefined && !INFINITE_TOKENS.includes(token) ? ['not valid JSON'] : named(k),
        token,
        apply: (b: Body) => void (at(b).data[k] = token !== undefined ? MARKER : v),
      };
    });
}

function shapeMutations(model: ModelUnderTest, draft: Draft, s: InputSpec): fc.Arbitrary<Mutation> {
  const shape = shapeOf(s, draft.batch);
  const n = countOf(shape);
  const at = (b: Body) => b.inputs[draft.order.indexOf(s.name)];
  const input = `input '${s.name}'`;
  const fixedDims = s.dims.flatMap((d, j) => (typeof d === 'number' ? [j] : []));
  const batchDim = s.dims.indexOf('batch');
  const mutations: Array<fc.Arbitrary<Mutation>> = [
    fc.tuple(fc.nat({ max: shape.length - 1 }), fc.constantFrom<unknown>(-1, -7, 0.5, 1.5, 2 ** 31, 2 ** 40, 1e300, 'NaN', '2', null, true, [], {})).map(([j, d]) => ({
      what: `shape[${j}] = ${JSON.stringify(d)}`,
      mentions: [input, 'shape must be an array of non-negative integers'],
      apply: (b: Body) => void (at(b).shape[j] = d),
    })),
    fc.tuple(fc.nat({ max: shape.length - 1 }), fc.constantFrom(...INFINITE_TOKENS)).map(([j, token]) => ({
      what: `shape[${j}] = ${token}`,
      mentions: [input, 'shape must be an array of non-negative integers'],
      token,
      apply: (b: Body) => void (at(b).shape[j] = MARKER),
    })),
    fc.boolean().map((longer) => ({
      what: longer ? 'one dimension more' : 'one dimension less',
      mentions: [input, `(rank ${shape.length})`],
      apply: (b: Body) => void (at(b).shape = longer ? [...shape, 1] : shape.slice(0, -1)),
    })),
    fc.boolean().map((more) => ({
      what: more ? 'one value more' : 'one value less',
      mentions: [input, `holds ${n} elements but data has ${more ? n + 1 : n - 1}`],
      apply: (b: Body) => void (more ? at(b).data.push(at(b).data[0]) : at(b).data.pop()),
    })),
    // A claimed batch far beyond the data: refused on the count, before anything is allocated.
    fc.integer({ min: 1000, max: 2 ** 31 - 1 }).map((big) => ({
      what: `batch of ${big}`,
      mentions: [input],
      apply: (b: Body) => void (at(b).shape[batchDim] = big),
    })),
    // Three levels enclose `data` (the body, `inputs`, the tensor): past 61 levels of its own, the
    // whole body is refused before any tensor is read; from 33 to 61, the tensor is.
    fc.integer({ min: 33, max: 400 }).map((depth) => ({
      what: `data nested ${depth} deep`,
      mentions: depth + 3 > MAX_JSON_DEPTH ? [`nested deeper than ${MAX_JSON_DEPTH} levels, at inputs[${draft.order.indexOf(s.name)}].data[0]`] : [input, 'nested deeper than 32'],
      apply: (b: Body) => {
        let v: unknown = at(b).data[0];
        for (let i = 0; i < depth; i++) v = [v];
        at(b).data = v;
      },
    })),
  ];
  if (fixedDims.length > 0) {
    mutations.push(
      fc
        .tuple(fc.constantFrom(...fixedDims), fc.integer({ min: 1, max: 9 }))
        .filter(([j, d]) => d !== s.dims[j])
        .map(([j, d]) => ({
          what: `shape[${j}] = ${d}`,
          mentions: [input, `(dimension ${j})`],
          apply: (b: Body) => {
            const t = at(b);
            t.shape[j] = d;
            t.data = new Array(countOf(t.shape)).fill(t.data[0]);
          },
        })),
    );
  }
  if (model.inputs.length > 1) {
    mutations.push(
      fc
        .integer({ min: 1, max: 5 })
        .filter((other) => other !== draft.batch)
        .map((other) => ({
          what: `batch ${other} in one input only`,
          mentions: ["'batch'"],
          apply: (b: Body) => {
            const t = at(b);
            t.shape[batchDim] = other;
            t.data = new Array(countOf(t.shape)).fill(t.data[0]);
          },
        })),
    );
  }
  return fc.oneof(...mutations);
}

/** Mistakes of the `instances` form: for a model with one input, rows that do not stack. */
function instancesMutations(model: ModelUnderTest): fc.Arbitrary<BadRequest> {
  if (model.inputs.length !== 1) {
    return validDraft(model).map((d) => ({
      what: 'instances to a model with several inputs',
      text: JSON.stringify({ instances: [[...d.values.get(model.inputs[0].name)!]] }),
      status: 400,
      mentions: [`has ${model.inputs.length} (`],
    }));
  }
  const rowsOf = (d: Draft) => {
    const flat = [...d.values.get(model.inputs[0].name)!];
    const width = flat.length / d.batch;
    return Array.from({ length: d.batch }, (_, i) => flat.slice(i * width, (i + 1) * width));
  };
  const bad = (what: string, instances: unknown, mentions: string[] = []): BadRequest => ({ what, text: JSON.stringify({ instances }), status: 400, mentions });
  return fc.oneof(
    fc.oneof(notArray, fc.constant([])).map((v) => bad(`instances = ${JSON.stringify(v)}`, v, ["'instances'"])),
    // Ragged rows after an intact first row, whose total still fills [batch, width]: refused, not
    // stacked out of line.
    validDraft(model)
      .filter((d) => d.batch >= 3)
      .chain((d) => fc.tuple(fc.constant(d), fc.integer({ min: 2, max: d.batch - 1 })))
      .map(([d, r]) => {
        const rows = rowsOf(d);
        rows[r - 1].push(rows[r].shift());
        return bad(`rows ${r - 1} and ${r} of unequal length`, rows, ["'instances'"]);
      }),
    validDraft(model)
      .filter((d) => d.batch >= 2)
      .map((d) => {
        const rows: unknown[] = rowsOf(d);
        rows[rows.length - 1] = [rows[rows.length - 1]];
        return bad('the last row nested one level deeper', rows, ["'instances'"]);
      }),
    fc.tuple(validDraft(model), fc.constantFrom(...NOT_OF_TYPE[model.inputs[0].datatype])).map(([d, v]) => {
      const rows = rowsOf(d);
      rows[0][0] = v;
      return bad(`instances[0][0] = ${JSON.stringify(v)}`, rows, [`input '${model.inputs[0].name}'`, 'value at index 0']);
    }),
    fc.integer({ min: 33, max: 300 }).map((depth) => {
      let v: unknown = 1;
      for (let i = 0; i < depth; i++) v = [v];
      return bad(`an instance nested ${depth} deep`, [v]);
    }),
  );
}

/** Bodies that are not a JSON request at all, or not the right media. */
function bodyLevelMistakes(model: ModelUnderTest, maxBodyBytes: number): fc.Arbitrary<BadRequest> {
  const validText = validDraft(model).map((d) => JSON.stringify(render(model, d)));
  const refused = (what: string, text: string, mentions: string[], more: Partial<BadRequest> = {}): BadRequest => ({ what, text, status: 400, mentions, ...more });
  const notJsonRoot = fc.oneof(
    fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
  );
  // Every type but JSON's (`application/json`, `application/*+json`): `text/plain` too. Not the
  // form type either, which is read as JSON when the body is JSON (what `curl -d` sends).
  const mediaType = fc.oneof(
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9.+-]{0,10}\/[A-Za-z0-9][A-Za-z0-9.+-]{0,14}$/).filter((t) => !/^application\/(json|[^/]+\+json|x-www-form-urlencoded)$/i.test(t)),
    fc.constantFrom('text/plain', 'TEXT/PLAIN', 'text/json', 'text/x+json'),
  );
  const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'), maxLength: 40 });
  const raw = { base64: 'raw' as const };
  return fc.oneof(
    validText.chain((t) => fc.integer({ min: 1, max: t.length - 1 }).map((p) => refused('cut short', t.slice(0, p), ['not valid JSON']))),
    fc
      .tuple(validText, fc.constantFrom(',', '}', ']', 'x', '{}', '//', '\u0000'))
      .map(([t, junk]) => refused(`${JSON.stringify(junk)} after the body`, t + junk, ['not valid JSON'])),
    notJsonRoot.map((v) => refused(`a body of ${JSON.stringify(v)}`, JSON.stringify(v), ['must be a JSON object'])),
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 1000 }), fc.constantFrom<BufferEncoding>('latin1', 'utf8'))
      .map(([bytes, encoding]) => refused(`${bytes.length} random bytes`, Buffer.from(bytes).toString(encoding), [])),
    fc
      .tuple(validText, mediaType, fc.constantFrom('', '; charset=utf-8', ';q=1'))
      .map(([text, type, params]) => refused(`Content-Type ${type}${params}`, text, [type.toLowerCase()], { contentType: `${type}${params}`, status: 415 })),
    fc
      .tuple(b64, fc.constantFrom('*', '!', '-', '_', '.', '%', '€', '{', '"', '\u0000'), b64)
      .map(([a, c, z]) => refused(`base64 with ${JSON.stringify(c)}`, a + c + z, ['base64'], raw)),
    b64.filter((t) => t.length % 4 !== 0).map((t) => refused(`base64 of length ${t.length}`, t, ['base64'], raw)),
    b64.filter((t) => t.length >= 4 && t.length % 4 === 0).map((t) => refused('base64 starting with =', `=${t.slice(1)}`, ['base64'], raw)),
    fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => refused('base64 of random bytes', Buffer.from(bytes).toString('latin1'), [], { base64: 'encode' })),
    fc.tuple(validDraft(model), fc.integer({ min: 1, max: 300 }), fc.array(fc.constantFrom('é', '€', '😀'), { maxLength: 20 }), fc.boolean()).map(([d, over, wide, encode]) =>
      refused(
        `${over} bytes over the limit${encode ? ', base64' : ''}`,
        padTo(JSON.stringify(render(model, d)), maxBodyBytes + over, wide.join('')),
        [`${maxBodyBytes + over} bytes`, `${maxBodyBytes} bytes`],
        {
          status: 413,
          base64: encode ? 'encode' : undefined,
        },
      ),
    ),
  );
}

/** The largest nesting the handler takes (handlers/core/nesting.ts), written down again here. */
export const MAX_JSON_DEPTH = 64;

/** Gives `body` an own field `key`, even one named as an inherited property (`__proto__`), as JSON.parse does. */
function own(body: Body, key: string, value: unknown): void {
  Object.defineProperty(body, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `levels` arrays (or objects `{"k":...}`) around a 1, as JSON text. */
function nestedText(levels: number, objects: boolean): string {
  return objects ? `${'{"k":'.repeat(levels)}1${'}'.repeat(levels)}` : `${'['.repeat(levels)}1${']'.repeat(levels)}`;
}

/**
 * A valid request with a value nested past the limit put anywhere: in a tensor's data, shape,
 * datatype or name, in one of its values or dimensions, in `id`, `parameters`, `outputs`, a field
 * nobody reads (named as an inherited property or not), or as the whole body. The answer must be
 * the 400 naming where, before anything walks the value (describing a datatype or a value in an
 * error, JSON.stringify, flattening data).
 */
function deepNesting(model: ModelUnderTest, maxBodyBytes: number): fc.Arbitrary<BadRequest> {
  const where = (at: number, s: InputSpec, n: number) =>
    fc.constantFrom<[string, (b: Body) => void]>(
      [`inputs[${at}].data`, (b) => void (b.inputs[at].data = MARKER)],
      [`inputs[${at}].data[${n - 1}]`, (b) => void (b.inputs[at].data[n - 1] = MARKER)],
      [`inputs[${at}].shape`, (b) => void (b.inputs[at].shape = MARKER)],
      [`inputs[${at}].shape[0]`, (b) => void (b.inputs[at].shape[0] = MARKER)],
      [`inputs[${at}].datatype`, (b) => void (b.inputs[at].datatype = MARKER)],
      [`inputs[${at}].name`, (b) => void (b.inputs[at].name = MARKER)],
      [`inputs[${at}].parameters`, (b) => void (b.inputs[at].parameters = MARKER)],
      [`inputs[${at}].${s.name === 'x' ? 'y' : 'x'}`, (b) => void (b.inputs[at][s.name === 'x' ? 'y' : 'x'] = MARKER)],
      ['id', (b) => void (b.id = MARKER)],
      ['parameters.p', (b) => void (b.parameters = { p: MARKER })],
      ['outputs[0].name', (b) => void (b.outputs = [{ name: MARKER }])],
      ['extra', (b) => void (b.extra = MARKER)],
      ['__proto__', (b) => own(b, '__proto__', MARKER)],
      ['constructor', (b) => own(b, 'constructor', MARKER)],
    );
  const placed = validDraft(model)
    .map((d): Draft => ({ ...d, form: 'oip', nested: false, extraRoot: {}, extraTensor: {}, id: undefined, outputs: undefined }))
    .chain((d) =>
      fc
        .constantFrom(...model.inputs)
        .chain((s) => fc.tuple(fc.constant(d), where(d.order.indexOf(s.name), s, countOf(shapeOf(s, d.batch))), fc.boolean(), fc.integer({ min: MAX_JSON_DEPTH, max: 1500 }))),
    )
    .map(([d, [path, put], objects, levels]) => {
      const body = render(model, d);
      put(body);
      const deep = nestedText(objects ? Math.min(levels, 600) : levels, objects);
      return { what: `nested ${levels} deep at ${path}`, text: JSON.stringify(body).replace(JSON.stringify(MARKER), deep), path };
    });
  const whole = fc.integer({ min: MAX_JSON_DEPTH + 1, max: 1500 }).map((levels) => ({ what: `a body nested ${levels} deep`, text: nestedText(levels, false), path: '[0]' }));
  return fc
    .oneof({ weight: 9, arbitrary: placed }, { weight: 1, arbitrary: whole })
    .filter((r) => Buffer.byteLength(r.text) <= maxBodyBytes)
    .map((r) => ({ what: r.what, text: r.text, status: 400, mentions: [`the request is nested deeper than ${MAX_JSON_DEPTH} levels, at ${r.path}`] }));
}

/** The request text with an unknown field that brings it to exactly `bytes` UTF-8 bytes. */
export function padTo(text: string, bytes: number, wide = ''): string {
  const base = `${text.slice(0, -1)},"padding":"${wide}"}`;
  const fill = bytes - Buffer.byteLength(base);
  if (fill < 0) throw new Error(`the request is already ${Buffer.byteLength(base)} bytes, over ${bytes}`);
  return `${text.slice(0, -1)},"padding":"${wide}${'x'.repeat(fill)}"}`;
}

/** Every way of getting a request wrong that the tests try, for one model. */
export function badRequests(model: ModelUnderTest, maxBodyBytes: number): fc.Arbitrary<BadRequest> {
  const oip = oipDraft(model);
  return fc.oneof(
    { weight: 4, arbitrary: oip.chain((d) => tensorMutations(model, d).map((m) => mutated(model, d, m))) },
    {
      weight: 3,
      arbitrary: oip.chain((d) =>
        fc
          .constantFrom(...model.inputs)
          .chain((s) => valueMutations(d, s))
          .map((m) => mutated(model, d, m)),
      ),
    },
    {
      weight: 3,
      arbitrary: oip.chain((d) =>
        fc
          .constantFrom(...model.inputs)
          .chain((s) => shapeMutations(model, d, s))
          .map((m) => mutated(model, d, m)),
      ),
    },
    { weight: 1, arbitrary: instancesMutations(model) },
    { weight: 3, arbitrary: bodyLevelMistakes(model, maxBodyBytes) },
    { weight: 2, arbitrary: deepNesting(model, maxBodyBytes) },
  );
}
