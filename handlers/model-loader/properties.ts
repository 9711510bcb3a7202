/**
 * Validation of the custom resource's properties. Every message names the property, because it is
 * what CloudFormation shows as the reason a deployment failed.
 */
import path from 'node:path';
import { MODEL_COPY_PROPERTY as P } from '../../contract/model-copy';
import { parseS3Uri } from '../core/model/s3-model';

export interface LoaderProperties {
  readonly modelS3Uri: string;
  readonly versionId?: string;
  /** Normalized: absolute, no trailing slash. */
  readonly mountPath: string;
  /** `${mountPath}/${ModelFileName}`: the physical resource id. */
  readonly modelPath: string;
  /** The model precompiled in ORT format, copied beside it, when the properties name one. */
  readonly precompiled?: { readonly s3Uri: string; readonly path: string };
}

/** What an Update replaces: the resource's physical id and its old properties, as CloudFormation sends them. */
export interface PreviousCopy {
  readonly physicalResourceId?: string;
  readonly properties?: Record<string, unknown>;
}

/** Longest file name most file systems (EFS included) accept, in bytes. */
const MAX_FILE_NAME_BYTES = 255;

export function parseProperties(raw: unknown): LoaderProperties {
  const properties = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const modelS3Uri = requireString(properties, P.MODEL_S3_URI);
  try {
    parseS3Uri(modelS3Uri);
  } catch {
    throw new Error(`${P.MODEL_S3_URI} must be s3://<bucket>/<key>, got ${JSON.stringify(modelS3Uri)}`);
  }
  const mountPath = parseMountPath(properties[P.MOUNT_PATH]);
  const fileNameProblem = problemWithFileName(properties[P.MODEL_FILE_NAME]);
  if (fileNameProblem) {
    throw new Error(`${P.MODEL_FILE_NAME} ${fileNameProblem}, got ${JSON.stringify(properties[P.MODEL_FILE_NAME])}`);
  }
  const modelPath = path.posix.join(mountPath, properties[P.MODEL_FILE_NAME] as string);
  if (path.posix.dirname(modelPath) !== mountPath) {
    throw new Error(`${P.MODEL_FILE_NAME} must name a file directly inside ${P.MOUNT_PATH} ${mountPath}, got ${JSON.stringify(properties[P.MODEL_FILE_NAME])}`);
  }
  return { modelS3Uri, versionId: parseVersionId(properties[P.MODEL_S3_VERSION_ID]), mountPath, modelPath, precompiled: parsePrecompiled(properties, mountPath) };
}

/** The precompiled model's source and file, both or neither. */
function parsePrecompiled(properties: Record<string, unknown>, mountPath: string): LoaderProperties['precompiled'] {
  const uri = properties[P.PRECOMPILED_S3_URI];
  const name = properties[P.PRECOMPILED_FILE_NAME];
  if ((uri === undefined || uri === '') && (name === undefined || name === '')) {
    return undefined;
  }
  const s3Uri = requireString(properties, P.PRECOMPILED_S3_URI);
  try {
    parseS3Uri(s3Uri);
  } catch {
    throw new Error(`${P.PRECOMPILED_S3_URI} must be s3://<bucket>/<key>, got ${JSON.stringify(s3Uri)}`);
  }
  const problem = problemWithFileName(name, '.ort');
  if (problem) {
    throw new Error(`${P.PRECOMPILED_FILE_NAME} ${problem}, got ${JSON.stringify(name)}`);
  }
  return { s3Uri, path: path.posix.join(mountPath, name as string) };
}

/** The mount path, normalized, or an error naming MountPath. */
export function parseMountPath(value: unknown): string {
  if (typeof value !== 'string' || !path.posix.isAbsolute(value)) {
    throw new Error(`${P.MOUNT_PATH} must be an absolute path (where the file system is mounted, e.g. /mnt/models), got ${JSON.stringify(value)}`);
  }
  return path.posix.resolve(value);
}

/** Why `value` is not a model file name the loader would write, or undefined when it is one. */
export function problemWithFileName(value: unknown, extension = '.onnx'): string | undefined {
  if (typeof value !== 'string' || value === '') {
    return 'must be a non-empty string';
  }
  if (/[/\\\0]/.test(value)) {
    return 'must be a plain file name, without a path separator';
  }
  // A name with no separator can only escape as "..", which the extension already excludes;
  // refusing any ".." keeps the rule obvious to whoever reads the error.
  if (value.includes('..')) {
    return 'must not contain ".."';
  }
  if (!value.endsWith(extension) || value === extension) {
    return `must end in ${extension}`;
  }
  if (Buffer.byteLength(value) > MAX_FILE_NAME_BYTES) {
    return `must be at most ${MAX_FILE_NAME_BYTES} bytes long`;
  }
  return undefined;
}

function requireString(properties: Record<string, unknown>, name: string): string {
  const value = properties[name];
  if (typeof value !== 'string' || value === '') {
    throw new Error(`${name} is required (a non-empty string), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** CloudFormation passes property values as strings; an empty one means "not pinned". */
function parseVersionId(value: unknown): string | undefined {
  if (value === undefined || value === '') {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new Error(`${P.MODEL_S3_VERSION_ID} must be a string, got ${JSON.stringify(value)}`);
  }
  return value;
}
