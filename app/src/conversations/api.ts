// The conversations API calls the chat list needs beyond saving chats (docs/http-api.md, "The app's
// conversations"): the tree (folders, skipped files), folders, moves, duplicate, branch, trash and search.
import { getJson, sendJson } from "../lib/api";
import type { ChatMessage } from "../chat/conversation";

const APP = "/api/v1/app";
const CONVERSATIONS = `${APP}/conversations`;

export interface Summary {
  id: string;
  folder: string;
  title: string;
  createdAt: number | null;
  updatedAt: number | null;
  model: string | null;
}

export interface Skipped {
  path: string;
  reason: string;
}

export interface Listing {
  folders: string[];
  conversations: Summary[];
  skipped: Skipped[];
}

export interface BranchedFrom {
  conversation: string;
  messageIndex: number;
}

export interface Document extends Summary {
  messages: ChatMessage[];
  systemPrompt?: string;
  branchedFrom?: BranchedFrom | null;
}

export interface TrashEntry {
  id: string;
  kind: "conversation" | "folder";
  folder: string;
  name: string;
  title: string | null;
}

export interface SearchResult extends Summary {
  match: "title" | "message";
  messageIndex: number | null;
  snippet: string;
}

function chatPath(id: string): string {
  return `${CONVERSATIONS}/${encodeURIComponent(id)}`;
}

export function listing(): Promise<Listing> {
  return getJson<Listing>(CONVERSATIONS);
}

export function createFolder(path: string): Promise<{ path: string }> {
  return sendJson("POST", `${APP}/folders`, { path });
}

/** Move a folder into `into` ("" is the top) and/or rename it. */
export function moveFolder(path: string, into: string | null, name: string | null = null): Promise<{ path: string }> {
  const body: Record<string, string> = { path };
  if (into !== null) body.into = into;
  if (name !== null) body.name = name;
  return sendJson("POST", `${APP}/folders/move`, body);
}

export function deleteFolder(path: string): Promise<TrashEntry> {
  return sendJson("DELETE", `${APP}/folders?path=${encodeURIComponent(path)}`);
}

export function moveChat(id: string, folder: string): Promise<Document> {
  return sendJson("POST", `${chatPath(id)}/move`, { folder });
}

export function duplicateChat(id: string, title?: string): Promise<Document> {
  return sendJson("POST", `${chatPath(id)}/duplicate`, title === undefined ? {} : { title });
}

export function branchChat(id: string, messageIndex: number): Promise<Document> {
  return sendJson("POST", `${chatPath(id)}/branch`, { messageIndex });
}

export function restore(entryId: string): Promise<TrashEntry> {
  return sendJson("POST", `${APP}/trash/${encodeURIComponent(entryId)}/restore`);
}

export async function search(query: string): Promise<SearchResult[]> {
  const body = await getJson<{ results: SearchResult[] }>(`${CONVERSATIONS}/search?q=${encodeURIComponent(query)}`);
  return body.results;
}
