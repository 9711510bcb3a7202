import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { TemplateMasking } from '../../../lib/testing/mask-asset-hashes';

const { maskAssetHashes } = TemplateMasking;

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mask-asset-hashes-'));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const HEX64 = /[0-9a-f]{64}/g;

/** The template of a function whose code asset holds `source`, with a version (via an alias). */
function templateWithCode(source: string): Record<string, any> {
  const dir = fs.mkdtempSync(path.join(tmpDir, 'code-'));
  fs.writeFileSync(path.join(dir, 'index.js'), source);
  const stack = new Stack(new App({ outdir: fs.mkdtempSync(path.join(tmpDir, 'out-')) }), 'Stack');
  const fn = new lambda.Function(stack, 'Fn', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromAsset(dir),
  });
  new lambda.Alias(stack, 'A', { aliasName: 'live', version: fn.currentVersion });
  return Template.fromStack(stack).toJSON();
}

function versionIdOf(template: Record<string, any>): string {
  const ids = Object.keys(template.Resources).filter((id) => template.Resources[id].Type === 'AWS::Lambda::Version');
  expect(ids).toHaveLength(1);
  return ids[0];
}

describe('maskAssetHashes on synthesized templates', () => {
  const first = templateWithCode('exports.handler = async () => 1;');
  const second = templateWithCode('exports.handler = async () => 2;');

  it('makes templates that differ only by code identical', () => {
    expect(first).not.toEqual(second);
    expect(versionIdOf(first)).not.toBe(versionIdOf(second));
    expect(maskAssetHashes(first)).toEqual(maskAssetHashes(second));
  });

  it('leaves no asset hash anywhere', () => {
    const raw = JSON.stringify(first);
    const hashes = raw.match(HEX64) ?? [];
    expect(hashes.length).toBeGreaterThan(0);
    const masked = JSON.stringify(maskAssetHashes(first));
    expect(masked).not.toMatch(HEX64);
    expect(masked.split('[ASSET HASH]').length - 1).toBe(hashes.length);
  });

  it('keeps the CurrentVersion prefix of the version logical id, and references to it', () => {
    const rawId = versionIdOf(first);
    const prefix = rawId.slice(0, rawId.indexOf('CurrentVersion') + 'CurrentVersion'.length);
    expect(prefix).toBe('FnCurrentVersion');
    // The path hash (8 characters) and the code hash (32) that follow change with the code.
    expect(rawId).toHaveLength(prefix.length + 40);

    const masked = maskAssetHashes(first);
    expect(versionIdOf(masked)).toBe(`${prefix}[HASH]`);
    const alias = Object.values<any>(masked.Resources).find((r) => r.Type === 'AWS::Lambda::Alias');
    expect(alias.Properties.FunctionVersion).toEqual({ 'Fn::GetAtt': [`${prefix}[HASH]`, 'Version'] });
  });

  it('does not modify its input', () => {
    const before = structuredClone(first);
    const masked = maskAssetHashes(first);
    expect(first).toEqual(before);
    expect(masked).not.toEqual(before);
  });
});

describe('maskAssetHashes on values', () => {
  const h1 = sha256('one');
  const h2 = sha256('two');

  it('masks every hash in a string, and in each of many strings and keys', () => {
    expect(maskAssetHashes(`${h1}/${h2}.zip`)).toBe('[ASSET HASH]/[ASSET HASH].zip');
    // A /g regex reused with test() or exec() would skip every other match from here on.
    expect(maskAssetHashes([h1, h1, `s3://${h2}`, h2])).toEqual(['[ASSET HASH]', '[ASSET HASH]', 's3://[ASSET HASH]', '[ASSET HASH]']);
    expect(maskAssetHashes({ [h1]: h2, [`${h2}.json`]: [h1] })).toEqual({
      '[ASSET HASH]': '[ASSET HASH]',
      '[ASSET HASH].json': ['[ASSET HASH]'],
    });
  });

  it('leaves what is not an asset hash alone', () => {
    const value = {
      short: h1.slice(1),
      text: 'index.handler',
      number: 64,
      flag: true,
      none: null,
      nested: [{ id: 'FnServiceRole1234ABCD' }],
    };
    expect(maskAssetHashes(value)).toEqual(value);
  });
});
