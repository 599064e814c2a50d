// `node --import ./record.mjs …`: records every module the process resolves, one
// `<specifier>\t<url>` line each, appended to the file named by PARLEY_TEST_RESOLUTIONS
// (embedded-loads-no-drivers.test.ts). The hooks run on Node's loader thread, hence two files.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url, { data: process.env.PARLEY_TEST_RESOLUTIONS });
