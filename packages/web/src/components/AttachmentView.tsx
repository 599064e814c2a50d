/**
 * A photo or file in a message. A photo shows its inline thumbnail at once and the full image
 * once downloaded and decrypted (started when it is rendered); a file is downloaded on request.
 */

import { useEffect, useState } from 'preact/hooks';
import {
  type Attachment,
  formatSize,
  isInlineImage,
  parseAttachment,
  thumbnailUrl,
} from '../lib/attachments.js';
import { useStore } from '../lib/context.js';
import type { ChatMessage } from '../lib/conversation.js';
import { Icon } from './Icon.js';

export function AttachmentView({ message }: { message: ChatMessage }) {
  const store = useStore();
  const attachment = message.media ? parseAttachment(message.body) : null;
  if (!attachment) return <PendingAttachment message={message} />;
  if (isInlineImage(attachment.content_type)) return <ImageAttachment attachment={attachment} />;
  return <FileAttachment attachment={attachment} onOpen={() => store.loadMedia(attachment)} />;
}

/** Before the upload finished: the sender's own preview (photo) or the file's name. */
function PendingAttachment({ message }: { message: ChatMessage }) {
  const store = useStore();
  const local = store.media.get(`local:${message.cmid}`)?.url;
  let name = '';
  try {
    name = String((JSON.parse(message.body) as { name?: unknown }).name ?? '');
  } catch {
    // A malformed body from another client: show no name.
  }
  if (local) return <img class="attachment-image" src={local} alt={name || 'Photo being sent'} />;
  return (
    <span class="attachment-file">
      <Icon name="attach" /> {name || 'Attachment'}
    </span>
  );
}

function ImageAttachment({ attachment }: { attachment: Attachment }) {
  const store = useStore();
  useEffect(() => store.loadMedia(attachment), [store, attachment.media]);
  const state = store.media.get(attachment.media);
  const alt = attachment.name ?? 'Photo';
  if (state?.url) {
    return (
      <a href={state.url} target="_blank" rel="noopener" class="attachment-link">
        <img class="attachment-image" src={state.url} alt={alt} data-testid="attachment-image" />
      </a>
    );
  }
  const thumb = thumbnailUrl(attachment);
  return (
    <span class="attachment-loading">
      {thumb && <img class="attachment-image blurred" src={thumb} alt={`${alt} (preview)`} />}
      <span class={state?.error ? 'form-error' : 'muted'}>
        {state?.error ? `Could not load the photo: ${state.error}` : 'Loading photo…'}
      </span>
    </span>
  );
}

function FileAttachment({ attachment, onOpen }: { attachment: Attachment; onOpen: () => void }) {
  const store = useStore();
  const [asked, setAsked] = useState(false);
  const state = store.media.get(attachment.media);
  const name = attachment.name ?? 'file';
  if (state?.url) {
    return (
      <a class="attachment-file" href={state.url} download={name} data-testid="attachment-file">
        <Icon name="attach" /> {name} ({formatSize(attachment.size)}) — save
      </a>
    );
  }
  return (
    <button
      type="button"
      class="attachment-file"
      data-testid="attachment-file"
      disabled={asked && !state?.error}
      onClick={() => {
        setAsked(true);
        onOpen();
      }}
    >
      <Icon name="attach" /> {name} ({formatSize(attachment.size)}){' '}
      {state?.error ? '— failed, try again' : asked ? '— decrypting…' : ''}
    </button>
  );
}
