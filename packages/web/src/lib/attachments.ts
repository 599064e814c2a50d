/**
 * Photos and files: encrypted here with a fresh key per file (`@parley/e2ee`), uploaded as opaque
 * bytes through the SDK's media ops, and described in the message body (media id, key, nonce,
 * digest, content type, optional inline thumbnail) so that only the conversation's members can
 * read them. The receiver downloads, checks the digest, decrypts, and shows a blob: URL (the
 * page's CSP allows images from `blob:` and `data:` only, besides its own origin).
 *
 * @module
 */

import {
  type AttachmentDescriptor,
  attachmentDescriptor,
  decryptAttachment,
  encryptAttachment,
  MAX_THUMBNAIL_BYTES,
  parseAttachmentDescriptor,
} from '@parley/e2ee';

/** What a message of kind `image` or `file` carries: the descriptor, plus the file's name. */
export type Attachment = AttachmentDescriptor & { name?: string };

/** The client calls this module needs (a `ParleyClient` has them). */
export interface MediaClient {
  uploadMedia(bytes: Uint8Array): Promise<string>;
  downloadMedia(media: string): Promise<Uint8Array>;
}

/**
 * Image types shown inline. Others (SVG above all: opened from a blob: URL it would run script
 * in this origin) are offered as downloads instead.
 */
const INLINE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Longest side of the inline thumbnail, in pixels. */
const THUMBNAIL_SIZE = 96;

/** Whether a content type is shown as an inline image. */
export function isInlineImage(contentType: string): boolean {
  return INLINE_IMAGE_TYPES.has(contentType.toLowerCase());
}

/** The message kind for a file: `image` for the types shown inline, `file` otherwise. */
export function kindOf(file: File): 'image' | 'file' {
  return isInlineImage(file.type) ? 'image' : 'file';
}

/** Reads the attachment of an `image` or `file` message body; null when it is not one. */
export function parseAttachment(body: string): Attachment | null {
  try {
    const raw = JSON.parse(body) as Record<string, unknown>;
    const descriptor: Attachment = parseAttachmentDescriptor(raw);
    if (typeof raw.name === 'string') descriptor.name = raw.name.slice(0, 256);
    return descriptor;
  } catch {
    return null;
  }
}

/** Encrypts and uploads a file; resolves with the message body and media id to send. */
export async function uploadAttachment(
  client: MediaClient,
  file: File,
): Promise<{ body: string; media: string }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const { ciphertext, pointer } = encryptAttachment(bytes);
  const media = await client.uploadMedia(ciphertext);
  const contentType = file.type || 'application/octet-stream';
  const thumbnail = isInlineImage(contentType) ? await makeThumbnail(file) : undefined;
  const descriptor: Attachment = attachmentDescriptor(media, pointer, contentType, thumbnail);
  if (file.name) descriptor.name = file.name;
  return { body: JSON.stringify(descriptor), media };
}

/**
 * Downloads and decrypts an attachment into a blob: URL. Files that are not inline images get a
 * neutral type, so that opening the URL can never render them as a page of this origin.
 */
export async function downloadAttachment(client: MediaClient, a: Attachment): Promise<string> {
  const ciphertext = await client.downloadMedia(a.media);
  const plaintext = decryptAttachment(ciphertext, a);
  const type = isInlineImage(a.content_type) ? a.content_type : 'application/octet-stream';
  return URL.createObjectURL(new Blob([plaintext.slice().buffer], { type }));
}

/** A small JPEG preview that travels inside the message, shown before the download finishes. */
async function makeThumbnail(file: File): Promise<Uint8Array | undefined> {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, THUMBNAIL_SIZE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.6));
    if (!blob || blob.size > MAX_THUMBNAIL_BYTES) return undefined;
    return new Uint8Array(await blob.arrayBuffer());
  } catch {
    // A preview is a nicety: an image the browser cannot decode is sent without one.
    return undefined;
  }
}

/** The data: URL of a descriptor's inline thumbnail. */
export function thumbnailUrl(a: Attachment): string | undefined {
  return a.thumbnail ? `data:image/jpeg;base64,${a.thumbnail}` : undefined;
}

/** A file size for people: 532 B, 14 KB, 3.2 MB. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
