import { createHash } from 'node:crypto';
import { VARIANT_HEADER, VARIANT_PARAMETER } from '../../../contract/variants';
import { badRequest } from '../protocol/errors';

/** What the router needs of a variant. */
export interface RoutedVariant {
  readonly name: string;
  readonly weight: number;
}

/**
 * Chooses the variant of each request. With a sticky header, the header's value is hashed
 * (SHA-256, salted with the model's name so that two endpoints split one user base independently)
 * to a point in [0, 1), and the variant is the one whose slice of [0, 1) holds it, slices laid out
 * by weight in the variants' order: the same value always lands on the same variant, on every
 * instance and every version that has the same names, order and weights. A key moves only when a
 * slice's edge passes its point: with two variants, raising one's weight moves keys onto it and
 * none away from it, so a ramp from 10 % to 50 % keeps the first 10 % where they were. A request without the
 * header (or with an empty one) gets a random point, as every request does without a sticky header.
 * A caller may name the variant itself: X-Inference-Target-Variant, or, for a direct invocation
 * (which has no headers), the request's `parameters.variant`.
 */
export class VariantRouter {
  private readonly bounds: number[];
  private readonly targetHeader = VARIANT_HEADER.TARGET.toLowerCase();

  constructor(
    private readonly variants: readonly RoutedVariant[],
    private readonly salt: string,
    private readonly stickyHeader?: string,
    private readonly random: () => number = Math.random,
  ) {
    const total = variants.reduce((s, v) => s + v.weight, 0);
    let sum = 0;
    this.bounds = variants.map((v) => {
      sum += v.weight;
      return sum / total;
    });
  }

  /**
   * The index of the variant that answers a request with these headers (names in lower case) and
   * this body: the variant the X-Inference-Target-Variant header or, for a direct invocation that
   * has no headers, the body's `parameters.variant` names; else the sticky or random choice.
   */
  assign(headers: Readonly<Record<string, string>> | undefined, body?: unknown): number {
    const header = headers?.[this.targetHeader];
    const parameter = (body as { parameters?: { [VARIANT_PARAMETER]?: unknown } } | null | undefined)?.parameters?.[VARIANT_PARAMETER];
    if (parameter !== undefined && typeof parameter !== 'string') {
      throw badRequest(`parameters.${VARIANT_PARAMETER} must be the name of a variant, got: ${String(JSON.stringify(parameter)).slice(0, 64)}`);
    }
    const target =
      header !== undefined && header !== '' ? { name: header, from: VARIANT_HEADER.TARGET } : parameter ? { name: parameter, from: `parameters.${VARIANT_PARAMETER}` } : undefined;
    if (target) {
      const i = this.variants.findIndex((v) => v.name === target.name);
      if (i < 0) {
        throw badRequest(`${target.from} names no variant of this model: '${target.name.slice(0, 64)}'; its variants are ${this.variants.map((v) => `'${v.name}'`).join(', ')}`);
      }
      return i;
    }
    const key = this.stickyHeader ? headers?.[this.stickyHeader] : undefined;
    return this.slotOf(key !== undefined && key !== '' ? VariantRouter.point(this.salt, key) : this.random());
  }

  /** The point in [0, 1) of a sticky key: the first 52 bits of SHA-256(salt, NUL, key). */
  static point(salt: string, key: string): number {
    const digest = createHash('sha256').update(salt).update('\0').update(key).digest();
    // 52 bits: exact in a double.
    return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
  }

  private slotOf(point: number): number {
    for (let i = 0; i < this.bounds.length; i++) {
      if (point < this.bounds[i]) return i;
    }
    return this.bounds.length - 1;
  }
}
