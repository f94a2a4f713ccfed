/**
 * Bounds how long a caller waits for work it cannot cancel (a DNS answer, a database read). The
 * work itself carries on; its late result or failure is ignored, and the timer never outlives the
 * race.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
