// The outbox in IndexedDB: a message is written here before it is sent and removed only when
// the server acks it (or refuses it for good), so one typed offline, or before a reload, is sent
// once later — under the same client id, which the server stores at most once.

import type { OutboxItem } from '../../ipc';

const DB_NAME = 'tidings';
const DB_VERSION = 1;
const STORE = 'outbox';

interface Row extends OutboxItem {
  user: number;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

export class Outbox {
  private constructor(
    private readonly db: IDBDatabase | null,
    private readonly user: number,
    /** Without IndexedDB (a private window may refuse it) the outbox lives only in memory. */
    private readonly memory: Map<string, Row>,
  ) {}

  static async open(user: number): Promise<Outbox> {
    let db: IDBDatabase | null = null;
    try {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, { keyPath: 'client_id' });
        store.createIndex('user', 'user');
      };
      db = await request(req);
    } catch (err) {
      console.warn('IndexedDB is not available: the outbox will not survive a reload', err);
    }
    return new Outbox(db, user, new Map());
  }

  async add(item: OutboxItem): Promise<void> {
    const row: Row = { ...item, user: this.user };
    if (this.db === null) {
      this.memory.set(row.client_id, row);
      return;
    }
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(row);
    await done(tx);
  }

  async remove(clientId: string): Promise<void> {
    if (this.db === null) {
      this.memory.delete(clientId);
      return;
    }
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(clientId);
    await done(tx);
  }

  /** This user's waiting messages, oldest first. */
  async list(): Promise<OutboxItem[]> {
    let rows: Row[];
    if (this.db === null) {
      rows = [...this.memory.values()];
    } else {
      const tx = this.db.transaction(STORE, 'readonly');
      rows = await request(tx.objectStore(STORE).index('user').getAll(this.user) as IDBRequest<Row[]>);
    }
    return rows
      .sort((a, b) => a.created_at - b.created_at)
      // Without the `user` the store keys them by; one written before attachments had none.
      .map(({ user: _user, ...item }) => ({ ...item, attachments: item.attachments ?? [] }));
  }
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}
