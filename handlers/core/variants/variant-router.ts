import { createHash } from 'node:crypto';
import { VARIANT_HEADER } from '../../../contract/variants';
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
 * A caller may name the variant itself with X-Inference-Target-Variant.
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

  /** The index of the variant that answers a request with these headers (names in lower case). */
  assign(headers: Readonly<Record<string, string>> | undefined): number {
    const target = headers?.[this.targetHeader];
    if (target !== undefined && target !== '') {
      const i = this.variants.findIndex((v) => v.name === target);
      if (i < 0) {
        throw badRequest(
          `${VARIANT_HEADER.TARGET} names no variant of this model: '${target.slice(0, 64)}'; its variants are ${this.variants.map((v) => `'${v.name}'`).join(', ')}`,
        );
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
