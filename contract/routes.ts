/**
 * The Open Inference Protocol's REST routes that every endpoint serves: the API (lib/api) creates a
 * resource and method for each, and the handler (handlers/core/http) matches requests against the
 * same table. A new route is added here, then given its integration and its handler case.
 */

/** The first segment of every route. */
export const ROUTES_ROOT = 'v2';
/** `/v2/models/{model}`: where the model's routes start. */
export const MODELS_SEGMENT = 'models';
/** `/v2/models/{model}/versions/{version}`: each model route again, for one version. */
export const VERSIONS_SEGMENT = 'versions';

/** One route: its method, and its path segments after `/v2` or after `/v2/models/{model}[/versions/{version}]`. */
export interface RouteDefinition {
  readonly kind: string;
  readonly method: 'GET' | 'POST';
  /** Whether the path starts at the model (`/v2/models/{model}/...`) rather than at `/v2`. */
  readonly perModel: boolean;
  readonly segments: readonly string[];
}

/** Every route, by kind; `InferenceRoute`'s values in lib/ are these kinds. */
export const ROUTES = {
  SERVER_METADATA: { kind: 'server-metadata', method: 'GET', perModel: false, segments: [] },
  SERVER_LIVE: { kind: 'server-live', method: 'GET', perModel: false, segments: ['health', 'live'] },
  SERVER_READY: { kind: 'server-ready', method: 'GET', perModel: false, segments: ['health', 'ready'] },
  MODEL_METADATA: { kind: 'model-metadata', method: 'GET', perModel: true, segments: [] },
  MODEL_READY: { kind: 'model-ready', method: 'GET', perModel: true, segments: ['ready'] },
  INFER: { kind: 'infer', method: 'POST', perModel: true, segments: ['infer'] },
} as const satisfies Record<string, RouteDefinition>;

export type RouteKind = (typeof ROUTES)[keyof typeof ROUTES]['kind'];

/** The server's name in `GET /v2`. */
export const SERVER_NAME = 'cdk-serverless-inference';

/**
 * Readiness is answered by status code (the protocol's health routes): 200 when ready, a 4xx when
 * not. The handler answers not ready while its model fails to load.
 */
export const READINESS_STATUS = { READY: 200, NOT_READY: 400 } as const;
