import { InferenceError, methodNotAllowed, notFound } from '../protocol/errors';

/** The Open Inference Protocol's REST routes that this handler serves. */
export type Route =
  | { readonly kind: 'server-metadata' }
  | { readonly kind: 'server-live' }
  | { readonly kind: 'server-ready' }
  | { readonly kind: 'model-metadata' }
  | { readonly kind: 'model-ready' }
  | { readonly kind: 'infer' };

export interface ServedModel {
  readonly name: string;
  readonly version: string;
}

/**
 * Finds the route for a method and path. The path is matched from its first `v2` segment on, so
 * a stage or base-path prefix (`/prod/v2/...` on an HTTP API stage, a custom domain's base path)
 * does not matter.
 */
export function matchRoute(method: string, rawPath: string, model: ServedModel): Route {
  // A function sees the same few paths over and over: each is worked out once (refusals are not kept).
  const key = `${method} ${model.name} ${model.version} ${rawPath}`;
  const known = MATCHED.get(key);
  if (known) return known;
  const route = findRoute(method, rawPath, model);
  if (MATCHED.size >= MATCHED_KEPT) MATCHED.clear();
  MATCHED.set(key, route);
  return route;
}

/** Routes found, by method, model and path; a bounded few, so that no caller can grow it. */
const MATCHED = new Map<string, Route>();
const MATCHED_KEPT = 64;

function findRoute(method: string, rawPath: string, model: ServedModel): Route {
  const segments = rawPath
    .split('/')
    .filter((s) => s.length > 0)
    .map(safeDecode);
  const start = segments.indexOf('v2');
  const s = start >= 0 ? segments.slice(start + 1) : undefined;
  const path = `/${segments.join('/')}`;
  if (!s) {
    throw notFound(`no route ${path}; routes are under /v2 (POST /v2/models/${model.name}/infer)`);
  }

  const need = (allowed: 'GET' | 'POST', route: Route): Route => {
    if (method !== allowed) throw methodNotAllowed(method, path, [allowed]);
    return route;
  };

  if (s.length === 0) return need('GET', { kind: 'server-metadata' });
  if (s[0] === 'health' && s.length === 2 && s[1] === 'live') return need('GET', { kind: 'server-live' });
  if (s[0] === 'health' && s.length === 2 && s[1] === 'ready') return need('GET', { kind: 'server-ready' });
  if (s[0] === 'models' && s.length >= 2) {
    checkModel(s[1], model);
    let rest = s.slice(2);
    if (rest[0] === 'versions') {
      if (rest.length < 2) throw notFound(`no route ${path}`);
      checkVersion(rest[1], model);
      rest = rest.slice(2);
    }
    if (rest.length === 0) return need('GET', { kind: 'model-metadata' });
    if (rest.length === 1 && rest[0] === 'ready') return need('GET', { kind: 'model-ready' });
    if (rest.length === 1 && rest[0] === 'infer') return need('POST', { kind: 'infer' });
  }
  throw notFound(`no route ${path}; this endpoint serves POST /v2/models/${model.name}/infer, GET /v2/models/${model.name}, GET /v2/health/ready`);
}

function checkModel(name: string, model: ServedModel): void {
  if (name !== model.name) {
    throw notFound(`unknown model '${name}'; this endpoint serves '${model.name}'`);
  }
}

function checkVersion(version: string, model: ServedModel): void {
  if (version !== model.version) {
    throw notFound(`model '${model.name}' has no version '${version}'; it serves version '${model.version}'`);
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InferenceError(400, `the path segment '${segment}' is not valid percent-encoding`);
  }
}
