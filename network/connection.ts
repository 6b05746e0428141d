/**
 * The I/O shell of one TCP connection: one reader loop, one writer, one timer.
 *
 * The reader loop owns the socket's read side. It only ever hands whole frames on: partial
 * frames stay in the `FrameDecoder` until the rest arrives, and no timer ever races a read
 * (docs/lessons.md#6); timeouts close the socket instead, which ends the read. The writer is
 * the only code that writes to the socket, fed by the bounded `SendQueue`. Everything the
 * protocol decides happens in `PeerState`; this file only moves bytes and runs the deadline.
 *
 * Must never: write from anywhere but the writer loop, grow memory past the queue bound, or
 * swallow a close: every exit path ends in `close()` with a reason.
 */
import { getLogger } from "@logtape/logtape";
import { ByteWriter } from "../encoding/binary.ts";
import { encodeFrame, FrameDecoder, FrameError } from "./frame.ts";
import { isControl, type Message } from "./messages.ts";
import { type PeerAction, PeerState } from "./peer.ts";
import { SendQueue } from "./send_queue.ts";
import { GOODBYE_FLUSH_MS, READ_BUFFER_BYTES, WRITE_BATCH_BYTES } from "./constants.ts";
import type { CloseReason, Direction } from "./api.ts";
import type { SessionInfo } from "./registry.ts";

const log = getLogger(["timenode", "net"]);

/**
 * First read buffer of a connection. Handshakes and pings are a few hundred bytes, and a
 * thousand idle peers must not hold 64 KiB each; a read that fills the buffer grows it
 * (x4, up to READ_BUFFER_BYTES) for a peer that streams.
 */
const MIN_READ_BUFFER_BYTES = 4 * 1024;
/** Consecutive small reads after which a grown read buffer is given back. */
const SHRINK_READ_BUFFER_AFTER = 64;

export interface ConnectionHandlers {
  /** Actions from the peer state machine other than "send", which this shell handles. */
  onActions(c: Connection, actions: readonly PeerAction[]): void;
  /** Exactly once per connection, after the socket is closed. */
  onClosed(c: Connection, reason: CloseReason, detail: string): void;
}

/** Monotonic milliseconds with sub-ms precision, for deadlines and RTT. */
export const monotonicNow = (): number => performance.now();

export class Connection implements SessionInfo {
  readonly sessionId: number;
  readonly direction: Direction;
  readonly remoteIp: string;
  readonly remotePort: number;
  readonly peer: PeerState;
  readonly queue: SendQueue;
  /** Registry key, set when the connection is admitted after its handshake. */
  key = "";
  /** The address we dialed (outbound only), for redial bookkeeping. */
  dialedAddress: string | null = null;
  readonly connectedAt = Date.now();
  lastSend = 0;
  lastRecv = 0;
  bytesSent = 0;
  bytesRecv = 0;
  closeReason: CloseReason | null = null;

  readonly #conn: Deno.Conn;
  readonly #magic: number;
  readonly #handlers: ConnectionHandlers;
  readonly #decoder: FrameDecoder;
  readonly #encoder = new ByteWriter(1024);
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #wakeWriter: (() => void) | null = null;
  #closing = false;
  readonly #actions: PeerAction[] = [];
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(opts: {
    conn: Deno.Conn;
    sessionId: number;
    direction: Direction;
    magic: number;
    peer: PeerState;
    maxQueueBytes: number;
    handlers: ConnectionHandlers;
  }) {
    this.#conn = opts.conn;
    this.sessionId = opts.sessionId;
    this.direction = opts.direction;
    this.#magic = opts.magic;
    this.peer = opts.peer;
    this.queue = new SendQueue(opts.maxQueueBytes);
    this.#handlers = opts.handlers;
    this.#decoder = new FrameDecoder(opts.magic, { handshakeFrames: 2 });
    const remote = opts.conn.remoteAddr as Deno.NetAddr;
    this.remoteIp = remote.hostname;
    this.remotePort = remote.port;
    this.done = new Promise((r) => (this.#resolveDone = r));
  }

  get nodeId(): string {
    return this.peer.nodeIdHex;
  }

  get isReady(): boolean {
    return this.peer.phase === "ready" && !this.#closing;
  }

  get isClosed(): boolean {
    return this.#closing;
  }

  start(): void {
    this.peer.start(monotonicNow(), this.#actions);
    this.#flushActions();
    this.#rescheduleTimer();
    this.#readLoop();
    this.#writeLoop();
  }

  /** Queues one message. A full queue means the peer is not reading: it is disconnected. */
  send(message: Message): boolean {
    if (this.#closing) return false;
    let frame: Uint8Array;
    try {
      // A view into the reused encoder: the queue copies it, so no per-frame allocation.
      frame = encodeFrame(this.#magic, message, this.#encoder);
    } catch (e) {
      // Only our own bug can get here (an oversized message): drop it, keep the connection.
      log.error("not sending {kind}: {error}", { kind: message.kind, error: (e as Error).message });
      return false;
    }
    if (!this.queue.push(frame, isControl(message.kind))) {
      this.close("send-queue-full", `send queue over ${this.queue.maxBytes} bytes`);
      return false;
    }
    this.#wakeWriter?.();
    return true;
  }

  /**
   * Closes the connection once. With `goodbye`, the reason is sent first and the writer gets
   * a moment to flush it, so the other side logs why instead of an EOF.
   */
  close(reason: CloseReason, detail = "", goodbye = false): void {
    if (this.#closing) return;
    if (goodbye && this.peer.phase === "ready") {
      this.queue.clear();
      this.queue.push(
        encodeFrame(this.#magic, { kind: "goodbye", reason: reason.slice(0, 100) }),
        true,
      );
      this.#wakeWriter?.();
      this.peer.markClosed();
      this.#closing = true;
      this.closeReason = reason;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#finish(reason, detail), GOODBYE_FLUSH_MS);
      return;
    }
    this.#closing = true;
    this.closeReason = reason;
    this.peer.markClosed();
    this.#finish(reason, detail);
  }

  #finished = false;
  #finish(reason: CloseReason, detail: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the other side or by a failed read: nothing left to release.
    }
    this.queue.clear();
    this.#wakeWriter?.();
    this.#handlers.onClosed(this, reason, detail);
    this.#resolveDone();
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(MIN_READ_BUFFER_BYTES);
    let smallReads = 0;
    while (!this.#closing) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch (e) {
        if (!this.#closing) this.close("read-error", (e as Error).message);
        return;
      }
      if (n === null) {
        if (!this.#closing) this.close("eof", "connection closed by peer");
        return;
      }
      if (this.#closing) return;
      this.bytesRecv += n;
      this.lastRecv = Date.now();
      let frames;
      try {
        frames = this.#decoder.push(buf.subarray(0, n));
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        this.close(e.reason, e.message);
        return;
      }
      const now = monotonicNow();
      for (const f of frames) {
        this.peer.onFrame(f.typeId, f.payload, now, this.#actions);
        if (this.#actions.length > 0) this.#flushActions();
        if (this.#closing) return;
      }
      if (this.peer.nextDeadline() < this.#timerAt) this.#rescheduleTimer();
      // Frames were decoded out of the decoder's own buffer, so `buf` can be replaced now.
      if (n === buf.length) {
        smallReads = 0;
        if (buf.length < READ_BUFFER_BYTES) {
          buf = new Uint8Array(Math.min(buf.length * 4, READ_BUFFER_BYTES));
        }
      } else if (buf.length > MIN_READ_BUFFER_BYTES && n <= MIN_READ_BUFFER_BYTES) {
        if (++smallReads >= SHRINK_READ_BUFFER_AFTER) {
          buf = new Uint8Array(MIN_READ_BUFFER_BYTES);
          smallReads = 0;
        }
      } else {
        smallReads = 0;
      }
    }
  }

  async #writeLoop(): Promise<void> {
    while (true) {
      if (this.queue.empty) {
        if (this.#finished) return;
        await new Promise<void>((r) => (this.#wakeWriter = r));
        this.#wakeWriter = null;
        continue;
      }
      const batch = this.queue.takeBatch(WRITE_BATCH_BYTES);
      try {
        let off = 0;
        while (off < batch.length) off += await this.#conn.write(batch.subarray(off));
      } catch (e) {
        if (!this.#finished) this.close("write-error", (e as Error).message);
        return;
      }
      this.bytesSent += batch.length;
      this.lastSend = Date.now();
    }
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closing) return;
    this.peer.tick(monotonicNow(), this.#actions);
    this.#flushActions();
    this.#rescheduleTimer();
  };

  #rescheduleTimer(): void {
    if (this.#closing) return;
    const at = this.peer.nextDeadline();
    if (at === Infinity) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - monotonicNow()));
  }

  #flushActions(): void {
    const actions = this.#actions.splice(0);
    const others: PeerAction[] = [];
    for (const a of actions) {
      if (a.kind === "send") this.send(a.message);
      else if (a.kind === "close") this.close(a.reason, a.detail, a.reason === "pong-timeout");
      else others.push(a);
    }
    if (others.length > 0) this.#handlers.onActions(this, others);
  }
}
