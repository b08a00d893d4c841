// The documents API calls (docs/http-api.md, "Documents in a chat"): a chat's file uploaded beside it,
// then the chat's last user message prepared with its documents (in full or retrieved passages).
import { getJson, sendJson, type WireMessage } from "../lib/api";

const APP = "/api/v1/app";

export interface Citation {
  file: string;
  page: number | null;
  start: number;
  end: number;
  text: string;
  score: number;
}

export interface Prepared {
  mode: "full" | "retrieval";
  /** The last user message's content for the model: the documents (or passages), then the query. */
  content: string;
  citations: Citation[];
  budget: { context: number; chat: number; answer: number; documents: number };
}

/** Keep `file` with the chat (`PUT /api/v1/app/conversations/{id}/files/{name}`). */
export async function uploadFile(conversation: string, file: File): Promise<void> {
  const path = `${APP}/conversations/${encodeURIComponent(conversation)}/files/${encodeURIComponent(file.name)}`;
  await getJson(path, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: file });
}

export function prepareDocuments(body: {
  model: string;
  conversation: string;
  files: string[];
  messages: WireMessage[];
  maxTokens?: number;
}): Promise<Prepared> {
  return sendJson<Prepared>("POST", `${APP}/documents/prepare`, body);
}
