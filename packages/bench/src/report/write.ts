/**
 * Writes a result as `<out>.json` and `<out>.html` (default out:
 * `bench-results/<scenario>-<timestamp>` under the current directory).
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BenchResult } from '../model.js';
import { renderHtml } from './html.js';

/** The default output path (without extension) for a scenario started at `startedAt`. */
export function defaultOut(scenario: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/\..*$/, '').replace(/:/g, '-');
  return `bench-results/${scenario}-${stamp}`;
}

/** Writes both files; returns their paths. */
export function writeReports(result: BenchResult, out: string): { json: string; html: string } {
  const base = resolve(out.replace(/\.(json|html)$/, ''));
  mkdirSync(dirname(base), { recursive: true });
  const json = `${base}.json`;
  const html = `${base}.html`;
  writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(html, renderHtml(result));
  return { json, html };
}
