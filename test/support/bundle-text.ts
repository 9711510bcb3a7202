import * as fs from 'node:fs';
import * as path from 'node:path';

/** The text of a prebuilt bundle file and of every file it imports: statically only, or dynamically too. */
export function loadedText(entry: string, { dynamic }: { dynamic: boolean }): string {
  const imports = dynamic ? /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g : /(?:\bfrom|\bimport)\s*["'](\.{1,2}\/[^"']+)["']/g;
  const seen = new Set<string>();
  const texts: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    texts.push(text);
    for (const m of text.matchAll(imports)) visit(path.resolve(path.dirname(file), m[1]));
  };
  visit(entry);
  return texts.join('\n');
}
