import { ASYNC_ROUTE_SEGMENT, ASYNC_UPLOADS_SEGMENT } from '../../../contract/async-inference';
import { MODELS_SEGMENT, ROUTES_ROOT } from '../../../contract/routes';
import { methodNotAllowed } from '../protocol/errors';

/** An asynchronous route: accept a request, hand out an upload URL, or answer a request's status. */
export type AsyncRoute = { readonly kind: 'accept' } | { readonly kind: 'upload' } | { readonly kind: 'status'; readonly id: string };

/**
 * The asynchronous route a method and path are, or undefined for any other path (left to the
 * protocol's routes). As matchRoute does, the path counts from its first `v2`, so a stage prefix
 * does not matter. Only the served model's unversioned path is asynchronous.
 */
export function matchAsyncRoute(method: string, rawPath: string, modelName: string): AsyncRoute | undefined {
  const segments = rawPath.split('/').filter((s) => s.length > 0);
  const start = segments.indexOf(ROUTES_ROOT);
  if (start < 0) return undefined;
  const s = segments.slice(start + 1);
  if (s.length < 3 || s.length > 4 || s[0] !== MODELS_SEGMENT || s[2] !== ASYNC_ROUTE_SEGMENT || decode(s[1]) !== modelName) return undefined;
  const path = `/${segments.join('/')}`;
  const expect = (wanted: string) => {
    if (method !== wanted) throw methodNotAllowed(method, path, [wanted]);
  };
  if (s.length === 3) {
    expect('POST');
    return { kind: 'accept' };
  }
  if (s[3] === ASYNC_UPLOADS_SEGMENT) {
    expect('POST');
    return { kind: 'upload' };
  }
  expect('GET');
  return { kind: 'status', id: decode(s[3]) };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
