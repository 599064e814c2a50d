/** Switches between light and dark (the start follows the system's preference). */

import { useState } from 'preact/hooks';
import { currentTheme, setTheme, type Theme } from '../lib/theme.js';

export function ThemeToggle() {
  const [theme, setLocal] = useState<Theme>(currentTheme());
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="ghost"
      data-testid="theme-toggle"
      aria-label={`Switch to ${next} theme`}
      onClick={() => {
        setTheme(next);
        setLocal(next);
      }}
    >
      {theme === 'dark' ? '☀' : '☾'}
    </button>
  );
}
