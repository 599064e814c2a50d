// Runs the MediaStore conformance suite against a real S3-compatible server (versitygw, started by
// `npm run engines:up`), with presigned URLs exercised over HTTP.

import { mediaStoreSuite } from '@parley/server/adapters/conformance/media-store.suite';
import { requireEngine } from '@parley/server/test/engines';
import { S3MediaStore } from './s3-media-store.js';

const endpoint = requireEngine('s3', 'S3MediaStore against a real S3 server');

if (endpoint !== undefined) {
  mediaStoreSuite('S3MediaStore', async () => {
    const store = new S3MediaStore({
      endpoint,
      region: process.env.PARLEY_TEST_S3_REGION ?? 'us-east-1',
      bucket: process.env.PARLEY_TEST_S3_BUCKET ?? 'parley-test',
      accessKeyId: process.env.PARLEY_TEST_S3_ACCESS_KEY ?? '',
      secretAccessKey: process.env.PARLEY_TEST_S3_SECRET_KEY ?? '',
    });
    return { store, close: async () => store.close() };
  });
}
