/**
 * `@parley/web`: the Parley web client. The server serves the built page (`dist/`) at `/`; an
 * application can also embed the client in its own page with {@link mount} and its own tokens.
 *
 * @module
 */

export { ChatStore, type ConnectionView, type StoreOptions } from './lib/store.js';
export { type MountedClient, type MountOptions, mount } from './mount.js';
