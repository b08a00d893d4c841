// Documents in a chat (docs/app.md, "Chat with documents"): which files can be attached, and how a user
// message's documents reach the model: uploaded beside the chat, then prepared by the server for the
// message's query (in full when they fit the model's context, else the best passages, with citations).
import type { WireMessage } from "../lib/api";
import type { ChatMessage } from "../chat/conversation";
import { prepareDocuments, uploadFile, type Citation } from "./api";

export const ACCEPT = ".pdf,.docx,.txt,.md";
const SUPPORTED = ACCEPT.split(",");

export interface AttachedFile {
  name: string;
  size: number;
}

/** What the server gave the model with a user message's documents (shown under the answer). */
export interface DocumentSources {
  mode: "full" | "retrieval";
  citations: Citation[];
}

export function isSupported(name: string): boolean {
  const lower = name.toLowerCase();
  return SUPPORTED.some((ext) => lower.endsWith(ext));
}

/** A file's size as "12.3 KB" / "4.5 MB" (the i18n key and its value). */
export function sizeLabel(bytes: number): { key: "documents.sizeKb" | "documents.sizeMb"; value: string } {
  if (bytes < 1024 * 1024) return { key: "documents.sizeKb", value: (bytes / 1024).toFixed(1) };
  return { key: "documents.sizeMb", value: (bytes / (1024 * 1024)).toFixed(1) };
}

/** Add `incoming` to `files`: a file of the same name replaces the earlier one. */
export function addFiles(files: File[], incoming: File[]): File[] {
  const names = new Set(incoming.map((f) => f.name));
  return files.filter((f) => !names.has(f.name)).concat(incoming);
}

/** Upload `files` beside chat `conversation` (a saved chat), then prepare `message`'s documents for the
 * model: its `prompt` (what is sent in place of its text) and `sources` are set. `history`: the chat as
 * it is sent, up to and including `message`. */
export async function withDocuments(
  conversation: string,
  message: ChatMessage,
  files: File[],
  history: WireMessage[],
  model: string,
  maxTokens: unknown,
): Promise<void> {
  for (const file of files) await uploadFile(conversation, file);
  const prepared = await prepareDocuments({
    model,
    conversation,
    files: message.files ?? [],
    messages: history,
    ...(typeof maxTokens === "number" ? { maxTokens } : {}),
  });
  message.prompt = prepared.content;
  message.sources = { mode: prepared.mode, citations: prepared.citations };
}

/** A message's attached files with their sizes (a size unknown to the app: 0). */
export function attachedOf(message: ChatMessage): AttachedFile[] {
  return (message.files ?? []).map((name, i) => ({ name, size: message.fileSizes?.[i] ?? 0 }));
}

/** The sources shown under answer `id`: those of the nearest user message before it. */
export function sourcesFor(messages: ChatMessage[], id: string): DocumentSources | undefined {
  const at = messages.findIndex((m) => m.id === id);
  for (let i = at - 1; i >= 0; i--) {
    if (messages[i].role === "user") return messages[i].sources;
  }
  return undefined;
}
