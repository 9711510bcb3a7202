import type { IConstruct } from 'constructs';
import { validationError } from './errors';

/**
 * What a packaging created when it was bound. A packaging creates its resources (a bucket, a layer,
 * a file system) in the scope it is bound to, so a second bind would create a second set and leave
 * the packaging's own properties describing only one of them: it is refused.
 */
export class BoundOnce<T> {
  private result?: T;

  constructor(private readonly packaging: string) {}

  /** Runs `create` on the first bind; a second bind fails naming the scope it was tried in. */
  public bind(scope: IConstruct, create: () => T): T {
    if (this.result !== undefined) {
      throw validationError(scope, `${this.packaging} is bound already: a packaging serves one inference function, so create one per endpoint`);
    }
    this.result = create();
    return this.result;
  }

  /** The result of the bind; only called by the endpoint after it bound the packaging. */
  public get(): T {
    if (this.result === undefined) {
      throw new Error(`${this.packaging} is not bound yet`);
    }
    return this.result;
  }
}
