import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * One temporary folder per test run, removed when the run ends: `process.on('exit')` hooks do not
 * run in vitest's forked workers, so files that tests leave must be cleaned up from here.
 */
export default function setup(): () => void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'csi-test-run-'));
  process.env.CSI_TEST_TMP = root;
  return () => fs.rmSync(root, { recursive: true, force: true });
}
