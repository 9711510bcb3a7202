/**
 * Marks an InferenceError across copies of this module: a hooks module bundled on its own carries
 * its own copy of `badRequest`, whose errors must still be answered as the 4xx they are.
 */
const INFERENCE_ERROR = Symbol.for('cdk-serverless-inference.InferenceError');

/**
 * An error that becomes an HTTP answer: the status and the Open Inference Protocol error body
 * `{"error": message}`. Hooks throw it too (see `badRequest`) to reject a request with a 4xx.
 */
export class InferenceError extends Error {
  readonly [INFERENCE_ERROR] = true;

  /**
   * What the operator needs and the caller must not see (a path, an S3 URI, an ARN, onnxruntime's
   * or SageMaker's own words): logged with the request id, never answered. The answer then carries
   * the request id, so that the caller can point at the log line.
   */
  readonly detail?: string;

  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, such as `Allow` on a 405. */
    readonly headers: Record<string, string> = {},
    detail?: string,
  ) {
    super(bounded(message));
    this.name = 'InferenceError';
    if (detail !== undefined) this.detail = detail;
  }
}

/**
 * Messages quote parts of the request (names, shapes, values); a request made of huge names or
 * shapes must not make an equally huge answer and log line.
 */
export const MAX_ERROR_MESSAGE_LENGTH = 1000;

function bounded(message: string): string {
  return message.length <= MAX_ERROR_MESSAGE_LENGTH ? message : `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH - 30)}… (${message.length} characters)`;
}

/** A 400 naming what is wrong with the request. */
export function badRequest(message: string): InferenceError {
  return new InferenceError(400, message);
}

/**
 * A 422: the request is well formed and fits the model's signature, but no answer can be made
 * from its values (the model refused them, or the answer would not fit the response limit).
 */
export function unprocessable(message: string, detail?: string): InferenceError {
  return new InferenceError(422, message, {}, detail);
}

export function notFound(message: string): InferenceError {
  return new InferenceError(404, message);
}

export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): InferenceError {
  return new InferenceError(405, `method ${method} is not allowed on ${path}; use ${allowed.join(' or ')}`, {
    Allow: allowed.join(', '),
  });
}

export function isInferenceError(e: unknown): e is InferenceError {
  return (
    e instanceof InferenceError ||
    (e instanceof Error && (e as Partial<Record<typeof INFERENCE_ERROR, boolean>>)[INFERENCE_ERROR] === true && typeof (e as InferenceError).status === 'number')
  );
}

/** How deep describeJson looks into arrays and objects; deeper ones are shown as `[…]` and `{…}`. */
const DESCRIBE_DEPTH = 6;

/**
 * JSON text of part of a request, for an error message, at most about `maxLength` characters: a
 * number JSON cannot hold (`1e999` parses to Infinity) is shown as itself, where JSON.stringify
 * would show `null`. It never walks deeper than a few levels nor further than it shows, so a value
 * of any size or depth costs the same (JSON.stringify recurses, and overflows the stack on deep
 * nesting).
 */
export function describeJson(value: unknown, maxLength = 200): string | undefined {
  if (value === undefined) return undefined;
  let text = '';
  const visit = (v: unknown, depth: number): void => {
    if (text.length > maxLength) return;
    if (typeof v === 'string') {
      text += JSON.stringify(v.length > maxLength ? v.slice(0, maxLength) : v);
    } else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
      text += String(v);
    } else if (Array.isArray(v)) {
      if (depth >= DESCRIBE_DEPTH) {
        text += v.length === 0 ? '[]' : '[…]';
        return;
      }
      text += '[';
      for (let i = 0; i < v.length && text.length <= maxLength; i++) {
        if (i > 0) text += ',';
        visit(v[i], depth + 1);
      }
      text += ']';
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      if (depth >= DESCRIBE_DEPTH) {
        text += keys.length === 0 ? '{}' : '{…}';
        return;
      }
      text += '{';
      for (let i = 0; i < keys.length && text.length <= maxLength; i++) {
        if (i > 0) text += ',';
        text += `${JSON.stringify(keys[i].slice(0, maxLength))}:`;
        visit((v as Record<string, unknown>)[keys[i]], depth + 1);
      }
      text += '}';
    } else {
      // null, and what JSON has no text for (undefined, a function) in an array.
      text += 'null';
    }
  };
  visit(value, 0);
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
}

/**
 * Removes what reads as the server's own from a message that came from elsewhere (onnxruntime, a
 * model container, SageMaker): an absolute path, a source location (`tensor.cc:57`), an ARN.
 * Such a message may then be answered; the whole of it stays in the log.
 */
export function redactServerDetail(message: string): string {
  return message
    .replace(/\barn:aws[\w-]*:[^\s"',;)]*/g, '…')
    .replace(/(?:[A-Za-z]:)?(?:[\\/][\w.@+~-]+){2,}(?::\d+)*/g, '…')
    .replace(/\b[\w-]+\.(?:cc|cpp|cxx|c|h|hpp|cu|py|js|mjs|ts|java|go|rs)(?::\d+)+/g, '…')
    .trim();
}
