/** The variant router: sticky points, weights as slices, and what a change of weights moves. */
import { describe, expect, it } from 'vitest';
import { VariantRouter } from '../../../../handlers/core/variants/variant-router';

const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
const assignAll = (router: VariantRouter) => users.map((u) => router.assign({ 'x-user-id': u }));

describe('VariantRouter', () => {
  it('gives each key one point in [0, 1), salted by the model', () => {
    const p = VariantRouter.point('churn', 'user-1');
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(1);
    expect(VariantRouter.point('churn', 'user-1')).toBe(p);
    expect(VariantRouter.point('fraud', 'user-1')).not.toBe(p);
  });

  it('splits keys by weight', () => {
    const router = new VariantRouter(
      [
        { name: 'a', weight: 90 },
        { name: 'b', weight: 10 },
      ],
      'm',
      'x-user-id',
    );
    const share = assignAll(router).filter((i) => i === 1).length / users.length;
    // Binomial(2000, 0.1): sd ~0.0067.
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.13);
  });

  it('moves keys only onto the variant whose weight grows, with two variants (a ramp keeps its first users)', () => {
    const before = assignAll(
      new VariantRouter(
        [
          { name: 'a', weight: 90 },
          { name: 'b', weight: 10 },
        ],
        'm',
        'x-user-id',
      ),
    );
    const after = assignAll(
      new VariantRouter(
        [
          { name: 'a', weight: 50 },
          { name: 'b', weight: 50 },
        ],
        'm',
        'x-user-id',
      ),
    );
    let moved = 0;
    for (let i = 0; i < users.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      expect([before[i], after[i]], users[i]).toEqual([0, 1]);
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('assigns at random without the header, by weight', () => {
    let n = 0;
    const values = [0, 0.49, 0.5, 0.99];
    const router = new VariantRouter(
      [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
      ],
      'm',
      'x-user-id',
      () => values[n++],
    );
    expect([router.assign({}), router.assign(undefined), router.assign({ 'x-user-id': '' }), router.assign({ other: 'x' })]).toEqual([0, 0, 1, 1]);
  });
});
