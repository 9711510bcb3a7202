/** Helpers for snapshot tests of stacks that use this library. */
export class TemplateMasking {
  /**
   * A copy of a synthesized template with what changes on every library or handler update masked:
   * asset hashes (the 64-hex keys of code, layer and model assets) and the hash suffixes of Lambda
   * version logical ids (`fn.currentVersion`), wherever they appear. Snapshot this instead of the raw
   * template so that a snapshot changes only when the infrastructure does.
   *
   * @example
   * import { Template } from 'aws-cdk-lib/assertions';
   * import { TemplateMasking } from 'cdk-serverless-inference';
   *
   * expect(TemplateMasking.maskAssetHashes(Template.fromStack(stack).toJSON())).toMatchSnapshot();
   */
  // biome-ignore lint/suspicious/noExplicitAny: takes and returns a template as Template.toJSON() gives it, a JSON object of `any`
  public static maskAssetHashes(template: any): any {
    return mask(template);
  }

  private constructor() {}
}

const ASSET_HASH = /[0-9a-f]{64}/g;
const VERSION_ID = /(CurrentVersion)[0-9A-F]{8}[0-9a-f]{32}/g;

function mask(value: unknown): unknown {
  if (typeof value === 'string') {
    return maskString(value);
  }
  if (Array.isArray(value)) {
    return value.map(mask);
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [maskString(k), mask(v)]));
  }
  return value;
}

function maskString(s: string): string {
  // `replace` with a /g regex starts from 0 each call; `.test()` would carry lastIndex over.
  return s.replace(ASSET_HASH, '[ASSET HASH]').replace(VERSION_ID, '$1[HASH]');
}
