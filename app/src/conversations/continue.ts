// "Continue": the model goes on writing an answer. The prompt is the chat as the model's template renders
// it for a new answer (`/api/v1/apply-template`), followed by the answer's text so far; the rest streams
// from `/api/v0/completions` with the chat's settings. Both are public APIs: a script can do the same.
import { ApiError, apiFetch, chunkEvents, sendJson, sseData, type StreamEvent, type WireMessage } from "../lib/api";

interface CompletionChunk {
  error?: { message?: string };
  choices?: { text?: string; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  stats?: { tokens_per_second?: number; time_to_first_token?: number; stop_reason?: string };
}

/** A completion chunk read as a chat chunk (its text as the delta's content). */
function asChatChunk(chunk: CompletionChunk): Parameters<typeof chunkEvents>[0] {
  const choices = chunk.choices?.map((c) => ({ delta: { content: c.text ?? "" }, finish_reason: c.finish_reason }));
  return { error: chunk.error, choices, usage: chunk.usage, stats: chunk.stats };
}

export async function* continueAnswer(
  model: string,
  history: WireMessage[],
  prefix: string,
  signal: AbortSignal,
  fields: Record<string, unknown> = {},
): AsyncGenerator<StreamEvent> {
  const rendered = await sendJson<{ prompt: string }>("POST", "/api/v1/apply-template", { model, messages: history });
  const response = await apiFetch("/api/v0/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...fields, model, prompt: rendered.prompt + prefix, stream: true }),
    signal,
  });
  if (!response.ok) throw await failure(response);
  if (!response.body) throw new ApiError("The server sent no answer.", 500);
  for await (const data of sseData(response.body)) {
    if (data === "[DONE]") return;
    yield* chunkEvents(asChatChunk(JSON.parse(data) as CompletionChunk));
  }
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string };
    const message = typeof body.error === "string" ? body.error : body.error?.message;
    if (message) return new ApiError(message, response.status);
  } catch {
    // not JSON: the raw text
  }
  return new ApiError(text || `HTTP ${response.status}`, response.status);
}
