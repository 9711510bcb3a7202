/** autocannon, typed for the part the benchmarks use (autocannon 8 ships no type declarations). */
// @ts-expect-error -- autocannon 8 ships no type declarations; the part used here is typed below.
import autocannonUntyped from 'autocannon';

export interface AutocannonResult {
  /** Seconds. */
  readonly duration: number;
  readonly '2xx': number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

/** The run in progress: a promise of its result, and an emitter of each response. */
export interface AutocannonRun extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseMs: number) => void): this;
}

export interface AutocannonOptions {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string | Buffer;
  connections: number;
  duration: number;
  /** Requests per second for all connections together. */
  overallRate?: number;
}

export const autocannon = autocannonUntyped as (options: AutocannonOptions) => AutocannonRun;
