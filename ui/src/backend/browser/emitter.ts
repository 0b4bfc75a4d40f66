// The events a backend emits, by name (`EventMap`), to whoever subscribed.

import type { EventMap, Unsubscribe } from '../../ipc';

type Handler<K extends keyof EventMap> = (payload: EventMap[K]) => void;

export class Emitter {
  private readonly handlers = new Map<keyof EventMap, Set<Handler<never>>>();

  on<K extends keyof EventMap>(name: K, handler: Handler<K>): Unsubscribe {
    let set = this.handlers.get(name);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(name, set);
    }
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  emit<K extends keyof EventMap>(name: K, payload: EventMap[K]): void {
    for (const handler of this.handlers.get(name) ?? []) {
      try {
        (handler as Handler<K>)(payload);
      } catch (err) {
        console.error(`a handler of ${String(name)} failed`, err);
      }
    }
  }
}
