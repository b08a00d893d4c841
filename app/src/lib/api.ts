// The app's client of openlms's public HTTP API (docs/http-api.md). Nothing here is private to the app:
// a script can make the same calls.

export interface LoadedInstance {
  id: string;
  status: string;
  config?: { context_length?: number };
}

export interface ModelEntry {
  key: string;
  type: string;
  display_name: string;
  max_context_length?: number;
  error?: string | null;
  loaded_instances: LoadedInstance[];
}

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ChatStats {
  tokensPerSecond?: number;
  timeToFirstToken?: number;
  promptTokens?: number;
  completionTokens?: number;
  stopReason?: string;
  /** Speculative decoding: the draft model, and how many of its tokens the model accepted. */
  draftModel?: string;
  acceptedDraftTokens?: number;
  totalDraftTokens?: number;
}

export interface WireMessage {
  role: string;
  content: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export type StreamEvent =
  | { kind: 'content'; text: string; drafted?: boolean }
  | { kind: 'reasoning'; text: string }
  | { kind: 'tool_call'; index: number; id?: string; name?: string; args: string }
  | { kind: 'done'; finishReason?: string; stats: ChatStats };

/** An error the API answered with: its own message, which says what to do. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

// The API token, when the server requires one (`require_auth`): kept for this tab (sessionStorage), or on
// this browser (localStorage) when the user asks to remember it. Sent as `Authorization: Bearer` on
// every call; a 401 tells the shell (the `openlms:auth` event) to ask for one.
const TOKEN_KEY = 'openlms.apiToken';
export const AUTH_EVENT = 'openlms:auth';

export function apiToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
}

export function setApiToken(token: string | null, remember = false): void {
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  if (token) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
}

/** `fetch` with the API token; every call to the server goes through it. It says it is the app
 * (`X-OpenLMS-Client: app`): the server's API switch, off for other programs, lets the app through
 * (a browser sends no `Sec-Fetch-Site` over plain HTTP to another machine). */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const token = apiToken();
  const headers = new Headers(init.headers);
  if (token && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${token}`);
  headers.set('X-OpenLMS-Client', 'app');
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    const message = (await errorOf(response.clone())).message;
    window.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: { message, hadToken: token !== null } }));
  }
  return response;
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string };
    const err = body.error;
    const message = typeof err === 'string' ? err : err?.message;
    if (message) return new ApiError(message, response.status);
  } catch {
    // not JSON: fall through to the raw text
  }
  return new ApiError(text || `HTTP ${response.status}`, response.status);
}

export async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await apiFetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  return getJson<T>(path, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The downloaded LLMs (embedding models cannot chat), with their loaded instances. */
export async function listModels(): Promise<ModelEntry[]> {
  const body = await getJson<{ models: ModelEntry[] }>('/api/v1/models');
  return body.models.filter((m) => m.type === 'llm');
}

/** Load `key` with the server's defaults, telling `onProgress` how far it is (0..1). */
export async function loadModel(key: string, onProgress: (fraction: number) => void = () => {}): Promise<void> {
  const response = await apiFetch('/api/v1/models/load', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: key, stream: true }),
  });
  if (!response.ok) throw await errorOf(response);
  if (!response.body) return;
  for await (const data of sseData(response.body)) {
    const event = JSON.parse(data) as { progress?: number; error?: { message?: string } };
    if (event.error) throw new ApiError(event.error.message ?? 'The model could not be loaded.', 500);
    if (typeof event.progress === 'number') onProgress(event.progress);
  }
}

export async function unloadModel(instanceId: string): Promise<void> {
  await sendJson('POST', '/api/v1/models/unload', { instance_id: instanceId });
}

interface Chunk {
  error?: { message?: string };
  choices?: {
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  stats?: {
    tokens_per_second?: number;
    time_to_first_token?: number;
    stop_reason?: string;
    draft_model?: string;
    accepted_draft_tokens_count?: number;
    total_draft_tokens_count?: number;
  };
  /** openlms: this chunk's text holds tokens of the draft model that the model accepted. */
  contains_drafted?: boolean;
}

/** The events one chunk of `/api/v0/chat/completions`' stream holds; an error chunk throws. */
export function chunkEvents(chunk: Chunk): StreamEvent[] {
  if (chunk.error) throw new ApiError(chunk.error.message ?? 'The prediction failed.', 500);
  const events: StreamEvent[] = [];
  const choice = chunk.choices?.[0];
  const delta = choice?.delta;
  const reasoning = delta?.reasoning_content ?? delta?.reasoning;
  if (reasoning) events.push({ kind: 'reasoning', text: reasoning });
  if (delta?.content) events.push({ kind: 'content', text: delta.content, drafted: chunk.contains_drafted === true });
  for (const call of delta?.tool_calls ?? []) {
    const fn = call.function ?? {};
    events.push({ kind: 'tool_call', index: call.index, id: call.id, name: fn.name, args: fn.arguments ?? '' });
  }
  if (choice?.finish_reason) {
    const stats: ChatStats = {
      tokensPerSecond: chunk.stats?.tokens_per_second,
      timeToFirstToken: chunk.stats?.time_to_first_token,
      promptTokens: chunk.usage?.prompt_tokens,
      completionTokens: chunk.usage?.completion_tokens,
      stopReason: chunk.stats?.stop_reason ?? choice.finish_reason,
    };
    if (chunk.stats?.draft_model) {
      stats.draftModel = chunk.stats.draft_model;
      stats.acceptedDraftTokens = chunk.stats.accepted_draft_tokens_count;
      stats.totalDraftTokens = chunk.stats.total_draft_tokens_count;
    }
    events.push({ kind: 'done', finishReason: choice.finish_reason, stats });
  }
  return events;
}

/** The `data:` payloads of a server-sent-events body, as they arrive. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const data = dataOf(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (data !== null) yield data;
      end = buffer.indexOf('\n\n');
    }
  }
  const rest = dataOf(buffer);
  if (rest !== null) yield rest;
}

function dataOf(event: string): string | null {
  const lines = event.split('\n').filter((l) => l.startsWith('data:'));
  if (lines.length === 0) return null;
  return lines.map((l) => l.slice(5).replace(/^ /, '')).join('\n');
}

/** Stream a chat answer from `/api/v0/chat/completions` (OpenAI's stream plus LM Studio's stats);
 * `fields` adds request fields (the chat's settings: temperature, max_tokens, draft_model...). */
export async function* streamChat(
  model: string,
  messages: WireMessage[],
  signal: AbortSignal,
  fields: Record<string, unknown> = {},
): AsyncGenerator<StreamEvent> {
  const response = await apiFetch('/api/v0/chat/completions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...fields, model, messages, stream: true }),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
  if (!response.body) throw new ApiError('The server sent no answer.', 500);
  for await (const data of sseData(response.body)) {
    if (data === '[DONE]') return;
    yield* chunkEvents(JSON.parse(data) as Chunk);
  }
}
