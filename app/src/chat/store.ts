// Where chats are kept: the server's conversations API (`/api/v1/app/conversations`, docs/http-api.md),
// one JSON file per chat in ~/.lmstudio/conversations/. A server without that API (404), or one that
// refuses this page (403: conversations answer the local machine only), leaves the chats in this page's
// memory for as long as it is open.
import { ApiError, getJson, sendJson } from "../lib/api";
import { withIds, type ChatMessage, type Conversation } from "./conversation";
import type { ChatSettings } from "./settings/settings";

export interface ConversationStore {
  /** Every chat, newest first; `messages` may be left out (`loaded: false`) until `load`. */
  list(): Promise<Conversation[]>;
  load(id: string): Promise<Conversation>;
  /** Save a chat; answers its id (a chat never saved before gets the store's id). */
  save(conversation: Conversation): Promise<string>;
  /** Delete a chat; answers what undoes it (`restore`), or null when nothing can. */
  remove(id: string): Promise<string | null>;
  /** Put a deleted chat back (the token `remove` gave). */
  restore(token: string): Promise<Conversation>;
}

/** A chat made in this page and not yet saved has an id with this prefix. */
export const LOCAL_PREFIX = "local-";

/** Chats kept for as long as the page is open. */
export class MemoryStore implements ConversationStore {
  private readonly chats = new Map<string, Conversation>();
  private readonly deleted = new Map<string, Conversation>();

  list(): Promise<Conversation[]> {
    const all = [...this.chats.values()].map((c) => structuredClone(c));
    return Promise.resolve(all.sort((a, b) => b.updatedAt - a.updatedAt));
  }

  load(id: string): Promise<Conversation> {
    const chat = this.chats.get(id);
    if (!chat) return Promise.reject(new ApiError(`Conversation '${id}' not found.`, 404));
    return Promise.resolve(structuredClone(chat));
  }

  save(conversation: Conversation): Promise<string> {
    this.chats.set(conversation.id, structuredClone(conversation));
    return Promise.resolve(conversation.id);
  }

  remove(id: string): Promise<string | null> {
    const chat = this.chats.get(id);
    this.chats.delete(id);
    if (!chat) return Promise.resolve(null);
    this.deleted.set(id, chat);
    return Promise.resolve(id);
  }

  restore(token: string): Promise<Conversation> {
    const chat = this.deleted.get(token);
    if (!chat) return Promise.reject(new ApiError("This chat can no longer be restored.", 404));
    this.deleted.delete(token);
    this.chats.set(token, chat);
    return Promise.resolve(structuredClone(chat));
  }
}

interface Summary {
  id: string;
  folder?: string;
  title: string;
  createdAt: number | null;
  updatedAt: number | null;
  model: string | null;
}

interface Document extends Summary {
  messages: ChatMessage[];
  systemPrompt?: string;
  settings?: ChatSettings;
  branchedFrom?: { conversation: string; messageIndex: number } | null;
}

const BASE = "/api/v1/app/conversations";

function fromSummary(s: Summary, messages: ChatMessage[] | null): Conversation {
  return {
    id: s.id,
    title: s.title,
    folder: s.folder ?? "",
    model: s.model ?? undefined,
    messages: messages ?? [],
    loaded: messages !== null,
    createdAt: s.createdAt ?? 0,
    updatedAt: s.updatedAt ?? 0,
  };
}

/** The server's conversations API, or this page's memory when the server has none for it. */
export class ServerStore implements ConversationStore {
  private memory: MemoryStore | null = null;

  async list(): Promise<Conversation[]> {
    if (this.memory) return this.memory.list();
    try {
      const tree = await getJson<{ conversations: Summary[] }>(BASE);
      return tree.conversations.map((s) => fromSummary(s, null));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        this.memory = new MemoryStore();
        return [];
      }
      throw err;
    }
  }

  async load(id: string): Promise<Conversation> {
    if (this.memory) return this.memory.load(id);
    const doc = await getJson<Document>(`${BASE}/${encodeURIComponent(id)}`);
    return {
      ...fromSummary(doc, withIds(doc.messages)),
      systemPrompt: doc.systemPrompt ?? "",
      settings: doc.settings ?? {},
      branchedFrom: doc.branchedFrom ?? null,
    };
  }

  async save(conversation: Conversation): Promise<string> {
    if (this.memory) return this.memory.save(conversation);
    const fields = {
      title: conversation.title,
      model: conversation.model ?? null,
      messages: conversation.messages,
      systemPrompt: conversation.systemPrompt ?? "",
      settings: conversation.settings ?? {},
    };
    if (conversation.id.startsWith(LOCAL_PREFIX)) {
      const created = await sendJson<Document>("POST", BASE, { ...fields, folder: conversation.folder ?? "" });
      return created.id;
    }
    await sendJson("PATCH", `${BASE}/${encodeURIComponent(conversation.id)}`, fields);
    return conversation.id;
  }

  async remove(id: string): Promise<string | null> {
    if (this.memory) return this.memory.remove(id);
    if (id.startsWith(LOCAL_PREFIX)) return null;
    const entry = await sendJson<{ id: string }>("DELETE", `${BASE}/${encodeURIComponent(id)}`);
    return entry.id;
  }

  async restore(token: string): Promise<Conversation> {
    if (this.memory) return this.memory.restore(token);
    const entry = await sendJson<{ name: string }>("POST", `/api/v1/app/trash/${encodeURIComponent(token)}/restore`);
    return this.load(entry.name);
  }
}

export function chooseStore(): ConversationStore {
  return new ServerStore();
}
