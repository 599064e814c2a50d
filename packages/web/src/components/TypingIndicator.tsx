/** "bob is typing…" under the timeline (announced politely to screen readers). */

export function TypingIndicator({ users }: { users: string[] }) {
  const text =
    users.length === 0
      ? ''
      : users.length === 1
        ? `${users[0]} is typing…`
        : `${users.slice(0, -1).join(', ')} and ${users[users.length - 1]} are typing…`;
  return (
    <div class="typing" aria-live="polite" data-testid="typing">
      {text}
    </div>
  );
}
