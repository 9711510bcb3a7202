/**
 * An error that becomes an HTTP answer: the status and the Open Inference Protocol error body
 * `{"error": message}`. Hooks throw it too (see `badRequest`) to reject a request with a 4xx.
 */
export class InferenceError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, such as `Allow` on a 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(bounded(message));
    this.name = 'InferenceError';
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

export function notFound(message: string): InferenceError {
  return new InferenceError(404, message);
}

export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): InferenceError {
  return new InferenceError(405, `method ${method} is not allowed on ${path}; use ${allowed.join(' or ')}`, {
    Allow: allowed.join(', '),
  });
}

export function isInferenceError(e: unknown): e is InferenceError {
  return e instanceof InferenceError;
}

/**
 * JSON text of part of a request, for an error message: a number JSON cannot hold (`1e999` parses
 * to Infinity) is shown as itself, where JSON.stringify would show `null`.
 */
export function describeJson(value: unknown): string | undefined {
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `\u0000${v}` : v));
  return text?.replace(/"\\u0000(-?Infinity|NaN)"/g, '$1');
}
