// The SDK's entry (chat-sdk.mjs): createChatClient, the outbox stores and the public types.
import { Client } from './client';
import type { ChatClient, ChatClientOptions } from './types';

export * from './types';
export { IndexedDbOutboxStore, MemoryOutboxStore } from './outbox';

/** A client for the given gateways, not connected yet: call connect(). */
export function createChatClient(options: ChatClientOptions): ChatClient {
  return new Client(options);
}
