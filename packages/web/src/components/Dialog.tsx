/**
 * A modal dialog on the native <dialog> element: focus moves into it and is trapped there,
 * Escape closes it, and focus returns to where it was.
 */

import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

interface Props {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  testId?: string;
}

let nextId = 0;

export function Dialog({ title, onClose, children, testId }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef(`dialog-title-${++nextId}`).current;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId} onClose={onClose} data-testid={testId}>
      <header class="dialog-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="ghost" aria-label="Close" onClick={onClose} data-testid="dialog-close">
          ✕
        </button>
      </header>
      {children}
    </dialog>
  );
}
