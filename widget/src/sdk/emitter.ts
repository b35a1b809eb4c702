// A tiny typed event emitter. A handler that throws is reported and does not stop the
// others, nor the client that emitted.

export class Emitter<E> {
  private handlers = new Map<keyof E, Set<(e: never) => void>>();

  on<K extends keyof E>(event: K, handler: (e: E[K]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (e: never) => void);
    return () => { set!.delete(handler as (e: never) => void); };
  }

  emit<K extends keyof E>(event: K, e: E[K]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const h of [...set]) {
      try {
        (h as (e: E[K]) => void)(e);
      } catch (err) {
        console.error('chat-sdk: a handler of', event, 'threw', err);
      }
    }
  }
}
