// Module resolution hooks (registered by record.mjs): every resolution the process makes, whether
// of a static or a dynamic import, passes through `resolve` and is appended to the file.
import { appendFileSync } from 'node:fs';

let file;

export function initialize(path) {
  if (!path) throw new Error('PARLEY_TEST_RESOLUTIONS must name the file to record resolutions in');
  file = path;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(file, `${specifier}\t${resolved.url}\n`);
  return resolved;
}
