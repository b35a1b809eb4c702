// Reconnect delays: exponential backoff with full jitter (a random delay between 0 and the
// capped exponential), so that clients cut off together do not come back together.

export class Backoff {
  private attempt = 0;

  constructor(private readonly initialMs = 500, private readonly maxMs = 30000,
              private readonly random: () => number = Math.random) {}

  /** The delay before the next attempt; each call doubles the cap until maxMs. */
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * cap);
  }

  /** After a successful connection: the next failure starts again from initialMs. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
