/**
 * A deadline for any promise, so a broken component fails its test naming what it waited for
 * instead of hanging the suite.
 *
 * Owns: that race. Must never: leave its timer behind (the tests keep Deno's sanitizers on).
 */

/** Races `p` against `ms`; on timeout runs `onTimeout` and rejects naming `what`. */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
