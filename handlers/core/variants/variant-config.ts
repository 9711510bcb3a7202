import { ENV } from '../../../contract/environment';
import { VARIANT_LOCATION_ENV, VARIANT_NAME_PATTERN, type VariantSpec } from '../../../contract/variants';
import { type HandlerConfig, readConfig } from '../config/config';

/** One variant, ready to load: its name, share and the handler configuration of its model. */
export interface VariantConfig {
  readonly name: string;
  readonly weight: number;
  /** The function's configuration with this variant's model location and version. */
  readonly config: HandlerConfig;
}

/** The variants of a function, as MODEL_VARIANTS and MODEL_VARIANT_HEADER say. */
export interface VariantsConfig {
  readonly variants: readonly VariantConfig[];
  /** The request header that makes assignment sticky, in lower case (events.ts lowers header names). */
  readonly stickyHeader?: string;
}

/** An HTTP header name (RFC 9110's token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Reads MODEL_VARIANTS and MODEL_VARIANT_HEADER; undefined when there are no variants. Each
 * variant's configuration is readConfig's, of the environment with the function's own model
 * location replaced by the variant's when it has one. A bad value throws naming the variable, as
 * readConfig does: the function answers 500 and its first log line says why.
 */
export function readVariantsConfig(env: NodeJS.ProcessEnv): VariantsConfig | undefined {
  const raw = env[ENV.MODEL_VARIANTS];
  const header = env[ENV.MODEL_VARIANT_HEADER];
  if (raw === undefined || raw === '') {
    if (header) throw new Error(`${ENV.MODEL_VARIANT_HEADER} is set, but ${ENV.MODEL_VARIANTS} is not: a sticky header chooses between variants`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${ENV.MODEL_VARIANTS} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length < 2) {
    throw new Error(`${ENV.MODEL_VARIANTS} must be a JSON array of two or more variants ({"name", "weight", "version"?, "env"?}), got: ${raw.slice(0, 200)}`);
  }
  const names = new Set<string>();
  const variants = parsed.map((v: unknown, i): VariantConfig => {
    const spec = v as Partial<VariantSpec> | null;
    const where = `${ENV.MODEL_VARIANTS}[${i}]`;
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`${where} must be an object, got: ${JSON.stringify(v)}`);
    if (typeof spec.name !== 'string' || !VARIANT_NAME_PATTERN.test(spec.name)) {
      throw new Error(`${where}.name must be 1 to 64 letters, digits, '.', '_' or '-', got: ${JSON.stringify(spec.name)}`);
    }
    if (names.has(spec.name)) throw new Error(`${where}.name '${spec.name}' is given twice; variant names must be unique`);
    names.add(spec.name);
    if (typeof spec.weight !== 'number' || !Number.isFinite(spec.weight) || spec.weight <= 0) {
      throw new Error(`${where}.weight must be a positive number, got: ${JSON.stringify(spec.weight)}`);
    }
    if (spec.version !== undefined && (typeof spec.version !== 'string' || spec.version === '')) {
      throw new Error(`${where}.version must be a non-empty string, got: ${JSON.stringify(spec.version)}`);
    }
    const own = spec.env ?? {};
    if (typeof own !== 'object' || own === null || Array.isArray(own)) throw new Error(`${where}.env must be an object of variables, got: ${JSON.stringify(own)}`);
    for (const [k, value] of Object.entries(own)) {
      if (!VARIANT_LOCATION_ENV.includes(k)) throw new Error(`${where}.env may set only ${VARIANT_LOCATION_ENV.join(', ')}, got: ${k}`);
      if (typeof value !== 'string') throw new Error(`${where}.env.${k} must be a string, got: ${JSON.stringify(value)}`);
    }
    const base: NodeJS.ProcessEnv = { ...env, [ENV.MODEL_VARIANTS]: undefined, [ENV.MODEL_VARIANT_HEADER]: undefined };
    if (Object.keys(own).length > 0) {
      for (const k of VARIANT_LOCATION_ENV) delete base[k];
    }
    const variantEnv = { ...base, ...own, ...(spec.version !== undefined ? { [ENV.MODEL_VERSION]: spec.version } : {}) };
    let config: HandlerConfig;
    try {
      config = readConfig(variantEnv);
    } catch (e) {
      throw new Error(`variant '${spec.name}' (${where}): ${(e as Error).message}`);
    }
    return { name: spec.name, weight: spec.weight, config };
  });
  if (header !== undefined && header !== '' && !HEADER_NAME.test(header)) {
    throw new Error(`${ENV.MODEL_VARIANT_HEADER} must be an HTTP header name, got: ${header}`);
  }
  return { variants, stickyHeader: header ? header.toLowerCase() : undefined };
}
