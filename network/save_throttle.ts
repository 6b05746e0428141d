/**
 * Coalesces saves of one file: however often `request()` is called, the file is written at most
 * once per `minIntervalMs`, never twice at once, and the last request is always written.
 *
 * Owns: the timer and the in-flight write of one file.
 * Must never: lose a request (a request during a write schedules one more write), or keep the
 * process alive after `flush()`.
 */
export class SaveThrottle {
  readonly #save: () => Promise<void>;
  readonly #minIntervalMs: number;
  readonly #onError: (e: unknown) => void;
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | null = null;
  #lastStart = -Infinity;
  #closed = false;

  constructor(save: () => Promise<void>, minIntervalMs: number, onError: (e: unknown) => void) {
    this.#save = save;
    this.#minIntervalMs = minIntervalMs;
    this.#onError = onError;
  }

  /** Asks for a write soon (at most one per interval). */
  request(): void {
    this.#dirty = true;
    if (this.#closed || this.#timer !== undefined || this.#writing) return;
    const wait = Math.max(0, this.#lastStart + this.#minIntervalMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, wait);
  }

  #write(): void {
    if (!this.#dirty || this.#writing) return;
    this.#dirty = false;
    this.#lastStart = performance.now();
    this.#writing = this.#save().catch(this.#onError).finally(() => {
      this.#writing = null;
      if (this.#dirty && !this.#closed) this.request();
    });
  }

  /** Stops the timer, waits for a write in flight, and writes once more if anything is pending. */
  async flush(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    if (this.#dirty) {
      this.#dirty = false;
      await this.#save().catch(this.#onError);
    }
  }
}
