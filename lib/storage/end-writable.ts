import type { Writable } from 'node:stream';

/**
 * End a writable (if not already ended) and wait for 'finish'. Unlike `stream.promises.finished`, this
 * also returns for a stream that already finished without emitting 'close' (an fs stream with
 * autoClose: false, ended by an upstream `pipeline`), where `finished` would wait forever.
 */
export function endWritable(stream: Writable): Promise<void> {
  if (stream.writableFinished) return Promise.resolve();
  if (stream.errored) return Promise.reject(stream.errored);
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('finish', onFinish);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onFinish = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (stream.writableFinished) resolve();
      else reject(stream.errored ?? new Error('stream closed before it finished writing'));
    };
    stream.on('finish', onFinish);
    stream.on('error', onError);
    stream.on('close', onClose);
    if (!stream.writableEnded) stream.end();
  });
}
