// A chat's data and the pure operations on it (no DOM, no network): what the chat view edits and saves.
import type { ChatStats, ToolCall, WireMessage } from '../lib/api';
import type { ChatSettings } from './settings/settings';
import type { DocumentSources } from '../documents/attach';

export type Role = 'user' | 'assistant' | 'system' | 'tool';

export interface ChatMessage {
  id: string;
  role: Role;
  content: string;
  reasoning?: string;
  toolCalls?: ToolCall[];
  /** A tool message: the call whose result it holds. */
  toolCallId?: string;
  stats?: ChatStats;
  /** Where the accepted draft tokens are in the text ([start, end) offsets; speculative decoding). */
  drafted?: [number, number][];
  /** The API's error message when the answer failed (shown in place of, or under, the text). */
  error?: string;
  model?: string;
  /** True while streaming; never saved. */
  pending?: boolean;
  /** A user message's attached documents: their names in the chat's `<id>.files/` (and sizes in bytes). */
  files?: string[];
  fileSizes?: number[];
  /** What the model gets in place of `content` (the message's documents, then its text). */
  prompt?: string;
  /** How the documents were given to the model, and the passages cited (shown under the answer). */
  sources?: DocumentSources;
}

export interface Conversation {
  id: string;
  title: string;
  model?: string;
  /** Sent as the first (system) message when not empty. */
  systemPrompt?: string;
  /** The chat's inference settings (the settings sidebar's), sent with each request. */
  settings?: ChatSettings;
  messages: ChatMessage[];
  /** False while only the chat's summary is known (its messages are read when it is opened). */
  loaded?: boolean;
  createdAt: number;
  updatedAt: number;
  /** The folder it is in ("" or absent: the top; "Work/Drafts"). */
  folder?: string;
  /** Set when the chat was branched from another one (the last message taken from it). */
  branchedFrom?: { conversation: string; messageIndex: number } | null;
}

export function newId(): string {
  // randomUUID needs a secure context (a page opened over plain http from another machine has none)
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export function newConversation(title: string): Conversation {
  const now = Date.now();
  return { id: `local-${newId()}`, title, messages: [], loaded: true, createdAt: now, updatedAt: now };
}

/** Messages as another writer may have saved them (a script, the SDK): each gets an id if it has none. */
export function withIds(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => (m.id ? m : { ...m, id: newId() }));
}

/** The title a new chat gets from its first user message (the first line, shortened). */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 48 ? `${line.slice(0, 47)}…` : line;
}

/** The history sent to the model: the system prompt first, failed answers left out, tool calls and their
 * results kept. */
export function toWire(messages: ChatMessage[], systemPrompt = ''): WireMessage[] {
  const system: WireMessage[] = systemPrompt.trim() ? [{ role: 'system', content: systemPrompt }] : [];
  return system.concat(messages
    .filter((m) => !(m.role === 'assistant' && m.error && !m.content && !m.toolCalls?.length))
    .map((m) => {
      const wire: WireMessage = { role: m.role, content: m.prompt ?? m.content };
      if (m.toolCalls?.length) {
        wire.tool_calls = m.toolCalls.map((c) => ({
          id: c.id,
          type: 'function' as const,
          function: { name: c.name, arguments: c.arguments },
        }));
      }
      if (m.role === 'tool' && m.toolCallId) wire.tool_call_id = m.toolCallId;
      return wire;
    }));
}

/** Add a streamed tool-call fragment to the calls so far (the first fragment names the call). */
export function addToolCallFragment(
  calls: ToolCall[],
  index: number,
  id: string | undefined,
  name: string | undefined,
  args: string,
): ToolCall[] {
  const next = calls.slice();
  const current = next[index] ?? { id: id ?? `call_${index}`, name: '', arguments: '' };
  next[index] = {
    id: id ?? current.id,
    name: name ?? current.name,
    arguments: current.arguments + args,
  };
  return next;
}

/** The messages up to and including `id` (what "edit and continue" keeps). */
export function upTo(messages: ChatMessage[], id: string): ChatMessage[] {
  const at = messages.findIndex((m) => m.id === id);
  return at < 0 ? messages : messages.slice(0, at + 1);
}

/** The messages before the last assistant answer (what "regenerate" answers again). */
export function beforeLastAnswer(messages: ChatMessage[]): ChatMessage[] {
  const last = messages.at(-1);
  return last?.role === 'assistant' ? messages.slice(0, -1) : messages;
}

/** Pretty JSON for a tool call's arguments, or the raw text when they are not JSON (yet). */
export function prettyArgs(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}
