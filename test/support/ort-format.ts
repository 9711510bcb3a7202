import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './handler';

const ORT_DIR = path.dirname(require.resolve('onnxruntime-node/package.json'));

/** As synth converts (lib/packaging/precompiled-model.ts), without the canonical step. */
const CONVERT = `
require(process.env.ORT_DIR).InferenceSession.create(process.env.SOURCE, {
  graphOptimizationLevel: 'basic', optimizedModelFilePath: process.env.TARGET, logSeverityLevel: 3,
  extra: { session: { save_model_format: 'ORT' } },
}).then((s) => s.release());
`;

/** onnxruntime's own ORT format bytes for the model file `onnxFile`, written in a new process. */
export function convertToOrt(onnxFile: string): Buffer {
  const target = path.join(tempDir(), 'model.ort');
  const r = spawnSync(process.execPath, ['-e', CONVERT], {
    env: { ...process.env, ORT_DIR, SOURCE: onnxFile, TARGET: target, ORT_DISABLE_TELEMETRY: '1' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`onnxruntime could not convert ${onnxFile}: ${r.stderr}`);
  return fs.readFileSync(target);
}
