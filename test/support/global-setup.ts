import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * One temporary folder per test run, removed when the run ends: `process.on('exit')` hooks do not
 * run in vitest's forked workers, so files that tests leave must be cleaned up from here.
 *
 * It is also the workers' TMPDIR: every App synthesized without an `outdir` writes a `cdk.out*`
 * folder (tens of MB with the ONNX Runtime layers) into the OS temp folder, and a run makes about a
 * thousand of them. Caches meant to outlive a run (registry tarballs, the arm64 sysroot) use
 * CSI_CACHE_TMP, the temp folder as it was.
 */
export default function setup(): () => void {
  const cacheTmp = process.env.CSI_CACHE_TMP ?? os.tmpdir();
  const root = fs.mkdtempSync(path.join(cacheTmp, 'csi-test-run-'));
  process.env.CSI_TEST_TMP = root;
  process.env.CSI_CACHE_TMP = cacheTmp;
  process.env.TMPDIR = root;
  return () => fs.rmSync(root, { recursive: true, force: true });
}
