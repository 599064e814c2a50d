/**
 * Light and dark: the page follows `prefers-color-scheme` until the user picks one with the
 * toggle; the choice is kept in localStorage and set as `data-theme` on the root element, which
 * the style sheet reads (no inline styles: the CSP forbids them).
 *
 * @module
 */

/** A theme the user picked. */
export type Theme = 'light' | 'dark';

const KEY = 'parley.theme';

/** The theme in force: the user's choice, or the system's. */
export function currentTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Applies the saved choice (if any) at start-up. */
export function applySavedTheme(): void {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
}

/** Sets and remembers a theme. */
export function setTheme(theme: Theme): void {
  localStorage.setItem(KEY, theme);
  document.documentElement.dataset.theme = theme;
}
