/**
 * A model repository under an S3 prefix (see model-repository.ts). Loaded only for a repository in
 * S3, with the SDK, so that a handler serving a local directory never loads either.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { REPOSITORY_MODEL_CONFIG_FILE, REPOSITORY_MODEL_FILE, REPOSITORY_PRECOMPILED_FILE } from '../../../contract/repository';
import { type RepositoryFile, type RepositoryStore, type RepositoryVersion, isValidName } from './model-repository';

type S3Sdk = typeof import('@aws-sdk/client-s3');

async function loadS3Sdk(): Promise<S3Sdk> {
  const loaded = (await import('@aws-sdk/client-s3')) as S3Sdk & { default?: S3Sdk };
  // As s3-client.ts: esbuild's code splitting exposes the CommonJS SDK behind a dynamic import as `default`.
  return typeof loaded.S3Client === 'function' ? loaded : loaded.default!;
}

/** A repository under an S3 prefix (`s3://bucket/prefix/`). */
export class S3Store implements RepositoryStore {
  readonly bucket: string;
  readonly prefix: string;

  constructor(
    readonly root: string,
    private readonly client: () => Promise<S3Client>,
  ) {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(root);
    if (!match) throw new Error(`a model repository's S3 URI must be s3://bucket/prefix/, got: ${root}`);
    this.bucket = match[1];
    this.prefix = match[2] === '' || match[2].endsWith('/') ? match[2] : `${match[2]}/`;
  }

  /**
   * The first segments of the keys under the prefix. Listed whole rather than with a `/` delimiter:
   * a repository holds a few keys per model version, and S3-compatible servers differ in their
   * delimiter support (s3rver 3.7 answers none).
   */
  async listModels(): Promise<string[]> {
    const names = new Set<string>();
    for await (const page of this.list(this.prefix)) {
      for (const o of page.Contents ?? []) {
        const rest = o.Key!.slice(this.prefix.length);
        if (rest.includes('/')) names.add(rest.slice(0, rest.indexOf('/')));
      }
    }
    return [...names];
  }

  async readModel(name: string): Promise<{ versions: RepositoryVersion[]; config?: unknown } | undefined> {
    const base = `${this.prefix}${name}/`;
    const files = new Map<string, Map<string, RepositoryFile>>();
    let hasConfig = false;
    for await (const page of this.list(base)) {
      for (const o of page.Contents ?? []) {
        const rest = o.Key!.slice(base.length);
        if (rest === REPOSITORY_MODEL_CONFIG_FILE) hasConfig = true;
        const parts = rest.split('/');
        if (parts.length !== 2 || !isValidName(parts[0])) continue;
        if (parts[1] !== REPOSITORY_MODEL_FILE && parts[1] !== REPOSITORY_PRECOMPILED_FILE) continue;
        const version = files.get(parts[0]) ?? new Map<string, RepositoryFile>();
        version.set(parts[1], { location: `s3://${this.bucket}/${o.Key}`, sizeBytes: o.Size ?? 0 });
        files.set(parts[0], version);
      }
    }
    const versions: RepositoryVersion[] = [];
    for (const [version, f] of files) {
      const model = f.get(REPOSITORY_MODEL_FILE);
      if (!model) continue;
      const precompiled = f.get(REPOSITORY_PRECOMPILED_FILE);
      versions.push({ name, version, model, ...(precompiled ? { precompiled } : {}) });
    }
    if (versions.length === 0) return undefined;
    return { versions, config: hasConfig ? await this.readConfig(`${base}${REPOSITORY_MODEL_CONFIG_FILE}`) : undefined };
  }

  private async readConfig(key: string): Promise<unknown> {
    const { GetObjectCommand } = await loadS3Sdk();
    try {
      const answer = await (await this.client()).send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return JSON.parse((await answer.Body?.transformToString()) ?? '');
    } catch {
      // A config that cannot be read or parsed: the defaults apply.
      return undefined;
    }
  }

  private async *list(prefix: string) {
    const { ListObjectsV2Command } = await loadS3Sdk();
    const client = await this.client();
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
