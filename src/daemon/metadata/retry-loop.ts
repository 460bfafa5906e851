/**
 * Runs an async step until it succeeds, with exponential backoff, and folds requests made while
 * it runs into one more round: what an etcd view needs to read a fresh snapshot and watch again
 * after a disconnect, however many disconnects arrive meanwhile.
 */
export interface RetryLoopOptions {
  firstDelayMs: number;
  maxDelayMs: number;
  /** True once the owner stopped: no more rounds, failures are not reported. */
  stopped(): boolean;
  /** Each failed round, before the wait. */
  failed(error: unknown): void;
}

export class RetryLoop {
  private running = false;
  private again = false;

  constructor(
    private readonly step: () => Promise<void>,
    private readonly options: RetryLoopOptions,
  ) {}

  /** Starts a round now, or one more after the running one. */
  request(): void {
    if (this.options.stopped()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run().finally(() => (this.running = false));
  }

  private async run(): Promise<void> {
    let delay = this.options.firstDelayMs;
    while (!this.options.stopped()) {
      this.again = false;
      try {
        await this.step();
        if (!this.again) return;
      } catch (error) {
        if (this.options.stopped()) return;
        this.options.failed(error);
        // Unref'd: a daemon that stopped (its server no longer holding the process) is not kept alive by a wait.
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, this.options.maxDelayMs);
      }
    }
  }
}
