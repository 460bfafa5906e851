/** What the streams suite streams, in its plain run and its A/B mode alike. */

const MiB = 1024 * 1024;

/** 1 GiB a stream in 1 MiB chunks, as in the issue. */
export const STREAM_PLAN = { chunkBytes: MiB, chunks: 1024, streamBuffer: '64MiB', daemonSize: '1GiB' };
