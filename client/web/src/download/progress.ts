// How far a download is: the bytes the browser has taken from the zip stream. The browser pulls
// no faster than it writes the file, so this follows the disk, not the decryption.

// The speed shown is over the last few seconds, so it reacts to a stall without jumping about.
const SPEED_WINDOW_MS = 5_000;

export class Progress {
  bytes = 0;
  private readonly started = performance.now();
  private readonly samples: { at: number; bytes: number }[] = [];
  private lastChange = performance.now();

  /** A pass-through stream that counts what is read through it. */
  counter(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, controller) => {
        this.bytes += chunk.byteLength;
        this.lastChange = performance.now();
        controller.enqueue(chunk);
      },
    });
  }

  elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Milliseconds since the last byte went through. */
  idleMs(): number {
    return performance.now() - this.lastChange;
  }

  /** Bytes per second over the last few seconds (call it at a steady pace, e.g. each redraw). */
  bytesPerSecond(): number {
    const now = performance.now();
    this.samples.push({ at: now, bytes: this.bytes });
    while (this.samples.length > 2 && now - (this.samples[0]?.at ?? now) > SPEED_WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    if (first === undefined || now - first.at < 250) return 0;
    return ((this.bytes - first.bytes) * 1000) / (now - first.at);
  }
}
