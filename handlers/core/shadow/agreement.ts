/**
 * Whether a shadow model's answer agrees with the live one. Both are the backend's answers (before
 * `postprocess`): the Open Inference Protocol's `outputs` (JSON or binary tensor data), or the
 * `instances` form's `predictions`. Integers, booleans and strings must be equal; floats within a
 * tolerance, or, for classifiers, at the same index of the largest value in each row.
 */
import { SHADOW_AGREEMENT, type ShadowAgreementName } from '../../../contract/capture';
import { binaryDataOf, decodeBinaryTensor } from '../protocol/binary-data';
import { type Datatype, RawJsonNumber, isDatatype } from '../protocol/datatypes';

export interface Agreement {
  readonly agreed: boolean;
  /** The first difference found, when they disagree. */
  readonly detail?: string;
}

export interface AgreementRule {
  readonly kind: ShadowAgreementName;
  readonly tolerance: number;
}

/** An answer's outputs, flattened: name → shape, whether its values are floats, and the values. */
export interface Flat {
  readonly shape: readonly number[];
  readonly float: boolean;
  readonly values: readonly unknown[];
}

const FLOATS: ReadonlySet<string> = new Set(['FP16', 'FP32', 'FP64']);

export function compareAnswers(live: unknown, shadow: unknown, rule: AgreementRule): Agreement {
  return compareFlat(flatten(live), flatten(shadow), rule);
}

/** An answer's outputs flattened, as JSON can carry them to a shadow function. */
export function flattenAnswer(answer: unknown): Record<string, Flat> {
  return Object.fromEntries(flatten(answer));
}

/** A live answer flattened by `flattenAnswer` against a shadow's answer. */
export function compareWithFlat(live: Record<string, Flat>, shadow: unknown, rule: AgreementRule): Agreement {
  return compareFlat(new Map(Object.entries(live)), flatten(shadow), rule);
}

function compareFlat(a: Map<string, Flat>, b: Map<string, Flat>, rule: AgreementRule): Agreement {
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) return { agreed: false, detail: `the shadow's answer has no output '${name}'` };
    if (x.shape.join(',') !== y.shape.join(',')) return { agreed: false, detail: `output '${name}' has shape [${x.shape.join(',')}], the shadow's [${y.shape.join(',')}]` };
    const float = x.float || y.float;
    const detail = float && rule.kind === SHADOW_AGREEMENT.ARGMAX ? compareArgmax(name, x, y) : compareValues(name, x, y, float ? rule.tolerance : 0);
    if (detail) return { agreed: false, detail };
  }
  for (const name of b.keys()) if (!a.has(name)) return { agreed: false, detail: `the shadow's answer has an output '${name}' the live one has not` };
  return { agreed: true };
}

function compareValues(name: string, x: Flat, y: Flat, tolerance: number): string | undefined {
  for (let i = 0; i < x.values.length; i++) {
    const p = x.values[i];
    const q = y.values[i];
    if (typeof p === 'number' && typeof q === 'number') {
      if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
      if (tolerance > 0 && Math.abs(p - q) <= tolerance * Math.max(1, Math.abs(p), Math.abs(q))) continue;
      return `output '${name}' value ${i}: ${p}, the shadow's ${q}${tolerance > 0 ? ` (tolerance ${tolerance})` : ''}`;
    }
    if (p !== q) return `output '${name}' value ${i}: ${JSON.stringify(p)}, the shadow's ${JSON.stringify(q)}`;
  }
  return undefined;
}

/** Rows along the last axis: the largest value's index in each must be the same. */
function compareArgmax(name: string, x: Flat, y: Flat): string | undefined {
  const width = x.shape.length === 0 ? 1 : x.shape[x.shape.length - 1];
  if (width === 0) return undefined;
  for (let row = 0; row * width < x.values.length; row++) {
    const i = argmax(x.values, row * width, width);
    const j = argmax(y.values, row * width, width);
    if (i !== j) return `output '${name}' row ${row}: the largest value is at ${i}, the shadow's at ${j}`;
  }
  return undefined;
}

function argmax(values: readonly unknown[], start: number, width: number): number {
  let best = 0;
  for (let k = 1; k < width; k++) if ((values[start + k] as number) > (values[start + best] as number)) best = k;
  return best;
}

function flatten(answer: unknown): Map<string, Flat> {
  const flat = new Map<string, Flat>();
  const outputs = (answer as { outputs?: unknown } | null)?.outputs;
  if (Array.isArray(outputs)) {
    for (const o of outputs as Array<{ name: string; datatype: string; shape: number[]; data?: unknown }>) {
      const bytes = binaryDataOf(o);
      const datatype = (isDatatype(o.datatype) ? o.datatype : 'BYTES') as Datatype;
      const data: unknown[] = bytes !== undefined ? Array.from(decodeBinaryTensor(bytes, datatype, o.shape, o.name) as ArrayLike<unknown>) : ((o.data as unknown[]) ?? []);
      flat.set(o.name, { shape: o.shape, float: FLOATS.has(datatype), values: data.map(plain) });
    }
    return flat;
  }
  const predictions = (answer as { predictions?: unknown } | null)?.predictions;
  if (Array.isArray(predictions)) {
    // The instances form: one output's rows, or an object of every output's row per prediction.
    if (predictions.length > 0 && predictions.every((p) => p !== null && typeof p === 'object' && !Array.isArray(p))) {
      for (const key of Object.keys(predictions[0] as object)) {
        flat.set(key, fromRows(predictions.map((p) => (p as Record<string, unknown>)[key])));
      }
    } else {
      flat.set('predictions', fromRows(predictions));
    }
  }
  return flat;
}

function fromRows(rows: readonly unknown[]): Flat {
  const shape: number[] = [rows.length];
  let level: unknown = rows[0];
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  const values = (rows as unknown[]).flat(Infinity).map(plain);
  return { shape, float: values.some((v) => typeof v === 'number' && !Number.isInteger(v)), values };
}

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  // A 64-bit integer past 2^53 is compared by its digits.
  if (v instanceof RawJsonNumber) return v.text;
  return v;
}
