import * as fs from 'node:fs';
import * as path from 'node:path';

/** Every capture record under a `--data-capture` / DATA_CAPTURE_DIR folder, with the hour folder it is in. */
export function readCaptureDir(dir: string): Array<{ folder: string; record: any }> {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.jsonl'))
    .flatMap((d) => {
      const file = path.join(d.parentPath, d.name);
      const folder = path.relative(dir, d.parentPath).split(path.sep).join('/');
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => ({ folder, record: JSON.parse(l) }));
    });
}

/** `yyyy/mm/dd/hh` of an ISO time, in UTC. */
export function hourOf(iso: string): string {
  return iso.slice(0, 13).replace(/-/g, '/').replace('T', '/');
}
