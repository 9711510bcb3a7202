import * as fs from 'node:fs';
import * as path from 'node:path';
import { writePaddedModel } from '../../tools/onnx';
import { tempDir } from './handler';

/**
 * A real ONNX model of exactly (within a few bytes) `sizeBytes`, written sparse: instant and taking
 * no disk, for tests of size limits. Removed when the test process exits.
 */
export function modelOfSize(sizeBytes: number, name = 'sized.onnx'): { path: string; sizeBytes: number } {
  const file = writePaddedModel(path.join(tempDir('csi-sized-'), name), sizeBytes, { sparse: true });
  return { path: file.path, sizeBytes: fs.statSync(file.path).size };
}
