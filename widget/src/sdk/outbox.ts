// Where the outbox lives: in memory (node, tests, storage 'memory') or in IndexedDB (browsers),
// so that a message typed before a reload is still sent, with the same cid, after it.
import type { OutboxStore, PendingMessage } from './types';

/** Oldest first; createdAt is strictly increasing per client (see ChatClient.send). */
function byAge(a: PendingMessage, b: PendingMessage): number {
  return a.createdAt - b.createdAt;
}

/** Kept as long as the object lives: share one between clients to hand messages over. */
export class MemoryOutboxStore implements OutboxStore {
  private items = new Map<string, PendingMessage>();

  async load(): Promise<PendingMessage[]> {
    return [...this.items.values()].map((m) => ({ ...m })).sort(byAge);
  }

  async put(m: PendingMessage): Promise<void> {
    this.items.set(m.cid, { ...m });
  }

  async remove(cid: string): Promise<void> {
    this.items.delete(cid);
  }
}

/** One database per namespace (storageKey), one object store keyed by cid. */
export class IndexedDbOutboxStore implements OutboxStore {
  private db: Promise<IDBDatabase> | undefined;

  constructor(private readonly name: string,
              private readonly idb: IDBFactory = globalThis.indexedDB) {}

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      this.db = new Promise((resolve, reject) => {
        const req = this.idb.open(this.name, 1);
        req.onupgradeneeded = () => req.result.createObjectStore('outbox', { keyPath: 'cid' });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      // A failed open may succeed later (e.g. storage was busy): do not keep the failure.
      this.db.catch(() => { this.db = undefined; });
    }
    return this.db;
  }

  private async run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('outbox', mode);
      const req = f(tx.objectStore('outbox'));
      // Resolved once the transaction is committed, so that a put is durable when it resolves.
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error ?? req.error);
    });
  }

  async load(): Promise<PendingMessage[]> {
    return ((await this.run('readonly', (s) => s.getAll())) as PendingMessage[]).sort(byAge);
  }

  async put(m: PendingMessage): Promise<void> {
    await this.run('readwrite', (s) => s.put({ ...m }));
  }

  async remove(cid: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(cid));
  }
}
