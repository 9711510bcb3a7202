/** Order statistics of repeated measurements, and how the report prints them. */

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The q-quantile (0..1) of sorted samples, interpolated between the two nearest ranks. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (sorted.length - 1) * q;
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/** Milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** Microseconds, for the in-process figures. */
export function us(valueMs: number): string {
  if (!Number.isFinite(valueMs)) return 'n/a';
  const value = valueMs * 1000;
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function times(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value < 0.1) return `×${value.toPrecision(2)}`;
  return `×${value >= 10 ? value.toFixed(1) : value.toFixed(2)}`;
}

/** min / median / max, the spread of a handful of runs. */
export function spread(s: Summary, format: (v: number) => string = ms): string {
  return `${format(s.min)} / **${format(s.p50)}** / ${format(s.max)}`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** Whole numbers with thousands separators, as the brief writes byte counts. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
