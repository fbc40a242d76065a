// Stopping a worker's pending awaits at once: a one-shot Latch that calls race against, and the
// Stopped rejection they end with.

/** Rejects an await cut short because the worker was told to stop. */
export class Stopped extends Error {}

/**
 * A one-shot event that in-flight awaits can race against. Unlike racing a long-pending promise,
 * it keeps no reaction per call once the call has settled (a worker makes millions of calls).
 */
export class Latch {
  constructor() {
    this.fired = false;
    this.listeners = new Set();
  }

  fire() {
    if (this.fired) return;
    this.fired = true;
    for (const l of this.listeners) l();
    this.listeners.clear();
  }

  /** Settles like `promise`, or with `onFire()` (its value or its throw) when fired first. */
  race(promise, onFire) {
    return new Promise((resolve, reject) => {
      const fired = () => {
        try {
          resolve(onFire());
        } catch (err) {
          reject(err);
        }
      };
      if (this.fired) {
        promise.catch(() => {});
        fired();
        return;
      }
      this.listeners.add(fired);
      promise.then(
        (v) => { this.listeners.delete(fired); resolve(v); },
        (e) => { this.listeners.delete(fired); reject(e); },
      );
    });
  }
}

export const throwStopped = () => { throw new Stopped(); };
