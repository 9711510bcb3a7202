import type * as Ort from 'onnxruntime-node';
import { binaryTensorBytes } from '../protocol/binary-data';
import type { BackendMetadata, BackendRequest, BackendResult, InferenceBackend } from './backend';
import type { BatchingSettings, ServiceConfig } from '../config/config';
import { type Datatype, ORT_TYPE_OF, decodeValues } from '../protocol/datatypes';
import { InferenceError, redactServerDetail, unprocessable } from '../protocol/errors';
import { jsonEscapeBytes, stringifyJson } from '../protocol/json';
import { type LoadedModel, type ModelRuntime, loadOnnxRuntime } from '../model/model-runtime';
import { ONNX_RUN_OPTIONS } from '../model/session-options';
import { type InferPlan, type OutputResult, buildInferResponse, expectedOutputShape, minJsonBytes, planInference } from '../protocol/protocol';
import type { TensorInit, TensorSpec } from '../protocol/tensors';
import { BatchQueues } from '../batching/dynamic-batcher';

/** Runs the model with onnxruntime in this function: the requests are checked against its signature. */
export class OnnxBackend implements InferenceBackend<LoadedModel> {
  /** The dynamic batcher's queues, one per session, when batching is on. */
  private readonly batches?: BatchQueues;

  constructor(
    private readonly config: ServiceConfig & { readonly batching?: BatchingSettings },
    private readonly runtime: ModelRuntime,
  ) {
    if (config.batching) this.batches = new BatchQueues(config.batching);
  }

  load(): Promise<LoadedModel> {
    return this.runtime.ensureLoaded();
  }

  metadata(model: LoadedModel): BackendMetadata {
    const spec = (s: TensorSpec) => ({
      name: s.name,
      datatype: s.datatype,
      shape: s.shape.map((d) => (typeof d === 'number' ? d : -1)),
    });
    return { platform: 'onnxruntime_onnx', inputs: model.signature.inputs.map(spec), outputs: model.signature.outputs.map(spec) };
  }

  /** Binary tensor data is read into onnxruntime's tensors here, and its outputs written from them. */
  readonly binaryTensorData = true;

  async infer(model: LoadedModel, request: BackendRequest): Promise<BackendResult> {
    const plan = planInference(request.body, model.signature, request.binary);
    // Where the model's declared output shapes and the request's dimensions fix the answer's size,
    // an answer too large to send is refused before the model runs (and allocates it).
    this.checkAnswerSize(
      plan.outputs.flatMap((o) => {
        const dims = expectedOutputShape(o, plan.symbols);
        return dims ? [{ name: o.name, datatype: o.datatype, dims, binary: plan.binaryOutputs.has(o.name) }] : [];
      }),
      plan.instanceCount,
      'would have',
    );
    const { results, inferenceMs, batchRequests } = await this.run(model, plan);
    // An output whose size comes from the request's values (ConstantOfShape, Expand, Range...) is
    // only known now: checked before any of its JSON is built, which would take far longer and far
    // more memory than onnxruntime's tensor.
    this.checkAnswerSize(
      plan.outputs.map((o) => ({
        name: o.name,
        datatype: o.datatype,
        dims: results.get(o.name)!.dims,
        data: results.get(o.name)!.data,
        binary: plan.binaryOutputs.has(o.name),
      })),
      plan.instanceCount,
      'has',
      request.answerCompressed ?? false,
    );
    const response = buildInferResponse(plan, results, { name: this.config.modelName, version: this.config.modelVersion });
    return { response, inferenceMs, ...(batchRequests !== undefined ? { batchRequests } : {}) };
  }

  /**
   * Refuses with a 422 an answer whose JSON cannot be smaller than the response limit: every value
   * takes at least a digit and a comma (see minJsonBytes), strings their own length too, and each
   * array the instances form nests them in its brackets. Once the model has run (`data` given) and
   * the values could take more than the limit (a float takes up to 25 characters), their JSON is
   * counted exactly, a slice at a time, up to the limit: an answer that cannot fit is refused before
   * any of it is built. Not an answer to be compressed, whose size is known only once compressed.
   */
  private checkAnswerSize(
    outputs: ReadonlyArray<{ name: string; datatype: Datatype; dims: readonly number[]; data?: unknown; binary: boolean }>,
    instances: number | undefined,
    tense: 'would have' | 'has',
    compressed = false,
  ): void {
    const limit = this.config.maxResponseBytes;
    let min = 0;
    let max = 0;
    const parts: string[] = [];
    for (const o of outputs) {
      parts.push(`'${o.name}' [${o.dims.join(',')}]`);
      const count = o.dims.reduce((a, b) => a * b, 1);
      const strings = o.datatype === 'BYTES' && Array.isArray(o.data) ? (o.data as string[]) : undefined;
      if (o.binary) {
        // Binary data goes base64-encoded in Lambda's answer: 4 characters for every 3 bytes.
        const bytes = Math.ceil(binaryTensorBytes(o.datatype, count, strings) / 3) * 4;
        min += bytes;
        max += bytes;
        continue;
      }
      const brackets = 2 * nestedArrays(o.dims, instances);
      min += minJsonBytes(o.datatype, count) + brackets;
      max += MAX_VALUE_JSON_BYTES[o.datatype] * count + brackets;
      if (strings) {
        for (const s of strings) {
          min += s.length;
          max += 6 * s.length;
        }
      }
    }
    const binary = outputs.some((o) => o.binary);
    if (min > limit) throw answerTooLarge(tense, min, binary, parts, limit);
    if (max <= limit || compressed || outputs.some((o) => o.data === undefined)) return;
    let exact = 0;
    for (const o of outputs) {
      const count = o.dims.reduce((a, b) => a * b, 1);
      if (o.binary) {
        exact += Math.ceil(binaryTensorBytes(o.datatype, count, o.datatype === 'BYTES' ? (o.data as string[]) : undefined) / 3) * 4;
      } else {
        exact += 2 * nestedArrays(o.dims, instances) + jsonDataBytes(o.data, o.datatype, limit - exact);
      }
      if (exact > limit) throw answerTooLarge(tense, exact, binary, parts, limit);
    }
  }

  /**
   * Runs the plan: through the session's batcher when batching is on (merged with other requests
   * where it can be), else alone. The time is the run's, without a wait in the batcher's queue.
   */
  private async run(model: LoadedModel, plan: InferPlan): Promise<{ results: ReadonlyMap<string, OutputResult>; inferenceMs: number; batchRequests?: number }> {
    const outputs = plan.outputs.map((o) => o.name);
    if (this.batches) {
      const batcher = this.batches.of(model.session, model.signature, (feeds, names) => this.runSession(model, feeds, names));
      const answer = await batcher.submit({ feeds: plan.feeds, outputs });
      return { results: answer.results, inferenceMs: answer.runMs, batchRequests: answer.requests };
    }
    const started = performance.now();
    const results = await this.runSession(model, plan.feeds, outputs);
    return { results, inferenceMs: performance.now() - started };
  }

  private async runSession(model: LoadedModel, tensors: ReadonlyMap<string, TensorInit>, outputs: readonly string[]): Promise<Map<string, OutputResult>> {
    const ort = loadOnnxRuntime();
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of tensors) {
      feeds[name] = new ort.Tensor(ORT_TYPE_OF[t.datatype] as Ort.Tensor.Type, t.data, t.shape);
    }
    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      out = await model.session.run(feeds, [...outputs], ONNX_RUN_OPTIONS);
    } catch (e) {
      throw runFailure((e as Error)?.message ?? String(e), [...tensors.keys()]);
    }
    const results = new Map<string, OutputResult>();
    for (const name of outputs) {
      const t = out[name] as Ort.Tensor;
      results.set(name, { dims: t.dims, data: t.data });
    }
    return results;
  }
}

/** The 422 for an answer that has (or would have) at least `bytes` bytes, naming its outputs. */
function answerTooLarge(tense: string, bytes: number, binary: boolean, outputs: readonly string[], limit: number): InferenceError {
  return unprocessable(
    `the answer ${tense} at least ${bytes} bytes${binary ? '' : ' of JSON'} (output ${outputs.join(', ')}), over the response limit of ${limit} bytes; ask for fewer values or fewer outputs`,
  );
}

/**
 * The most bytes one value of each datatype takes in JSON, its comma included: `-2147483648,`,
 * `false,`, a float's 25 characters (see json.ts), `"-Infinity",`; a string's quotes and comma,
 * besides up to six bytes per character (`\u001f`).
 */
const MAX_VALUE_JSON_BYTES: Record<Datatype, number> = {
  BOOL: 6,
  UINT8: 4,
  INT8: 5,
  UINT16: 6,
  INT16: 7,
  UINT32: 11,
  INT32: 12,
  UINT64: 21,
  INT64: 21,
  FP16: 26,
  FP32: 26,
  FP64: 26,
  BYTES: 3,
};

/** Values of an output turned into JSON at once, while it is counted. */
const COUNT_SLICE = 4096;

/**
 * The bytes of an output's values in JSON (`v,v,...`, as the answer writes them), counted a slice
 * at a time (strings one by one, without writing them) and given up once past `budget`.
 */
function jsonDataBytes(data: unknown, datatype: Datatype, budget: number): number {
  let bytes = 0;
  if (datatype === 'BYTES') {
    for (const s of data as string[]) {
      bytes += Buffer.byteLength(s) + jsonEscapeBytes(s) + 3;
      if (bytes > budget) return bytes;
    }
    return bytes;
  }
  const values = data as ArrayLike<number> & { subarray(start: number, end: number): unknown };
  for (let i = 0; i < values.length; i += COUNT_SLICE) {
    // The slice's JSON with its brackets: one byte more than its values and their commas.
    bytes += Buffer.byteLength(stringifyJson(decodeValues(values.subarray(i, i + COUNT_SLICE), datatype))) - 1;
    if (bytes > budget) return bytes;
  }
  return bytes;
}

/**
 * How many arrays the instances form (of `instances` instances) nests an output's values in: a
 * prediction per row, an array per index of each dimension but the last (so an empty output of
 * shape [1, 2^31, 0] has 2^31 + 1). None for the Open Inference Protocol's flat `data`, or for an
 * output not in rows of the instances (refused by buildInferResponse).
 */
function nestedArrays(dims: readonly number[], instances: number | undefined): number {
  if (instances === undefined || dims[0] !== instances) return 0;
  let arrays = 0;
  let product = 1;
  for (let i = 0; i < dims.length - 1; i++) {
    product *= dims[i];
    arrays += product;
  }
  return arrays;
}

/** onnxruntime's way of saying which node failed while the model ran. */
const NODE_FAILURE = /^Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: ([\s\S]*)$/;

/** onnxruntime's own checks of the feeds against the model, before anything runs. */
const INPUT_CHECK = /invalid dimensions|invalid rank|shape mismatch|incompatible dimensions|unexpected input data type/i;

/**
 * onnxruntime-common's check of an output's dimensions, as the run hands its outputs to JavaScript:
 * inputs never reach it with such dimensions (the handler caps theirs at 2^31 - 1).
 */
const OUTPUT_DIMS_CHECK = /^dims\[\d+\] must be an integer, got: /;

/**
 * Whose fault a failed `session.run` is, and the answer it gets.
 *
 * By the time the model runs, the handler has checked the request against the model's signature
 * (input names, datatypes, ranks, fixed dimensions, symbolic dimensions shared between inputs,
 * element counts), and onnxruntime loaded the model, which checked the graph and created a kernel
 * for every node. What can still fail is decided by onnxruntime's own report:
 *
 * - its check of the feeds against the model (`Invalid rank for input`, `Got invalid dimensions`):
 *   the request does not fit the model: 400, as the handler's own checks answer.
 * - its check of an output's dimensions on the way back to JavaScript (`dims[1] must be an
 *   integer`): the values asked for an empty output with a dimension past 2^53 (ConstantOfShape of
 *   [0, 2^62]), which the model computed but the binding cannot return: 422.
 * - a node failing while it runs (`Non-zero status code returned while running <Op> node`): the
 *   kernel refused what reached it, and what reached it is a function of the request's values: a
 *   negative or overflowing dimension fed to ConstantOfShape or Reshape, a string Cast cannot
 *   parse, an index outside a Gather's table, an allocation for a size the values asked for.
 *   That is the caller's to fix: 422, naming the request's inputs and the node, with onnxruntime's
 *   reason stripped of its source locations. A 5xx here would let any caller raise the server-error
 *   alarm (and roll back a good deployment) on purpose. The one case this misjudges, a model that
 *   fails on every input, fails its pre-traffic check (the rollout's sampleRequest) before it takes
 *   traffic, and its 422s are logged at WARN with onnxruntime's full message, as every one is.
 * - anything else (the binding refusing a feed the handler built, an exception outside any node)
 *   is the handler's or the runtime's own failure: 500, its message in the log only.
 */
function runFailure(message: string, inputs: readonly string[]): InferenceError {
  const named = inputs.length === 0 ? 'no inputs' : inputs.length === 1 ? `input '${inputs[0]}'` : `inputs ${inputs.map((n) => `'${n}'`).join(', ')}`;
  const node = NODE_FAILURE.exec(message);
  if (node) {
    const [, op, name, status] = node;
    const reason = reasonOf(status);
    return unprocessable(
      `the model cannot compute an answer from the values of ${named}: its ${op} node${name ? ` '${name}'` : ''} refused them${reason ? ` (${reason})` : ''}`,
      message,
    );
  }
  if (OUTPUT_DIMS_CHECK.test(message)) {
    return unprocessable(`the model's answer to the values of ${named} has a dimension past 2^53, which onnxruntime-node cannot return`, message);
  }
  if (INPUT_CHECK.test(message)) {
    const reason = reasonOf(message);
    return new InferenceError(400, `the model rejected ${named}${reason ? `: ${reason}` : ''}`, {}, message);
  }
  return new InferenceError(500, 'the model failed on this request', {}, message);
}

/** C++ exceptions that onnxruntime passes on as they are: their `what()` says little on its own. */
const BARE_EXCEPTIONS: Record<string, string> = {
  stod: 'a string that is not a number',
  stof: 'a string that is not a number',
  stoi: 'a string that is not an integer',
  stol: 'a string that is not an integer',
  stoll: 'a string that is not an integer',
  'std::bad_alloc': 'not enough memory for the sizes these values ask for',
};

/**
 * onnxruntime's reason, without where in its source it was raised. Its messages come as
 * `/onnxruntime_src/.../reshape_helper.h:27 onnxruntime::ReshapeHelper::ReshapeHelper(...) <check>
 * was false. <reason>`, as `... [ONNXRuntimeError] : 1 : FAIL : tensor.cc:57 <function> <reason>`,
 * or as a bare reason. The file, the function and the failed check go; the reason stays.
 */
export function reasonOf(status: string): string {
  let text = status.trim();
  const afterCode = /\[ONNXRuntimeError\] : \d+ : \w+ : ([\s\S]*)$/.exec(text);
  if (afterCode) text = afterCode[1].trim();
  const located = /^\S*\.(?:cc|cpp|cxx|c|h|hpp|cu):\d+\s+/.exec(text);
  if (located) text = withoutFunction(text.slice(located[0].length));
  const failedCheck = / was false\.\s*([\s\S]*)$/.exec(text);
  if (failedCheck) text = failedCheck[1];
  text = redactServerDetail(text).replace(/\s+/g, ' ').trim();
  text = Object.hasOwn(BARE_EXCEPTIONS, text) ? BARE_EXCEPTIONS[text] : text;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/**
 * `text` without the function name that follows a source location: a whole signature
 * (`void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool) const`), or one identifier
 * (`CalculateTensorStorageSize`).
 */
function withoutFunction(text: string): string {
  const open = text.indexOf('(');
  if (open > 0 && /^[\w\s:<>,*&~]*[\w>]$/.test(text.slice(0, open))) {
    let depth = 0;
    for (let i = open; i < text.length; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')' && --depth === 0) {
        // Qualifiers and template notes after the parameters: ` const`, ` [with T = float]`.
        const rest = /^(?:\s*(?:const\b|noexcept\b|\[with [^\]]*\]))*/.exec(text.slice(i + 1))!;
        return text.slice(i + 1 + rest[0].length).trim();
      }
    }
    return text;
  }
  return text.replace(/^[A-Za-z_]\w*\s+/, '');
}
