import { MODELS_SEGMENT, ROUTES, ROUTES_ROOT, type RouteDefinition, type RouteKind, VERSIONS_SEGMENT } from '../../../contract/routes';
import { InferenceError, methodNotAllowed, notFound } from '../protocol/errors';

/** A route this handler serves, found in the contract's table. */
export interface Route {
  readonly kind: RouteKind;
}

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
  const start = segments.indexOf(ROUTES_ROOT);
  const s = start >= 0 ? segments.slice(start + 1) : undefined;
  const path = `/${segments.join('/')}`;
  if (!s) {
    throw notFound(`no route ${path}; routes are under /${ROUTES_ROOT} (POST /${ROUTES_ROOT}/models/${model.name}/infer)`);
  }
  let rest = s;
  let perModel = false;
  if (s[0] === MODELS_SEGMENT && s.length >= 2) {
    checkModel(s[1], model);
    perModel = true;
    rest = s.slice(2);
    if (rest[0] === VERSIONS_SEGMENT) {
      if (rest.length < 2) throw notFound(`no route ${path}`);
      checkVersion(rest[1], model);
      rest = rest.slice(2);
    }
  }
  const found = ROUTE_LIST.find((r) => r.perModel === perModel && sameSegments(r.segments, rest));
  if (found) {
    if (method !== found.method) throw methodNotAllowed(method, path, [found.method]);
    return { kind: found.kind };
  }
  throw notFound(`no route ${path}; this endpoint serves POST /v2/models/${model.name}/infer, GET /v2/models/${model.name}, GET /v2/health/ready`);
}

const ROUTE_LIST: readonly (RouteDefinition & { readonly kind: RouteKind })[] = Object.values(ROUTES);

function sameSegments(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
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
