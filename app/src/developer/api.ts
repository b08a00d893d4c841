// The Developer page's calls: the server's settings (/api/v1/app/server/settings) and its live logs
// (/api/v1/logs/stream, read with fetch so that the API token travels in its header).
import { apiFetch, getJson, sendJson, sseData } from "../lib/api";

export interface ServerSettings {
  /** The API switch: off, other programs get 503 (the app and `lms` keep working); applies at once. */
  api_enabled?: boolean;
  port: number;
  host: string;
  cors: boolean;
  jit: boolean;
  jit_ttl_seconds: number;
  auto_evict: boolean;
  require_auth: boolean;
}

export interface ServerView {
  settings: ServerSettings;
  network: boolean;
  live: string[];
  restart_required: Partial<ServerSettings>;
  restart_command: string;
  status: {
    version: string;
    pid: number;
    uptime_seconds: number;
    loaded_models: { identifier: string; model_key: string; jit: boolean }[];
  };
}

const URL = "/api/v1/app/server/settings";

export function getServer(): Promise<ServerView> {
  return getJson<ServerView>(URL);
}

export function changeServer(changes: Partial<ServerSettings>): Promise<ServerView> {
  return sendJson<ServerView>("PATCH", URL, changes);
}

export type LogSource = "server" | "model";

export interface LogEvent {
  timestamp?: number;
  level?: string;
  logger?: string;
  message?: string;
  type?: string;
  modelIdentifier?: string;
  input?: string;
  output?: string;
}

/** One source's log events until `signal` aborts; `onEvent` gets each one, `onDropped` a loss count. */
export async function followLogs(
  source: LogSource,
  signal: AbortSignal,
  onEvent: (event: LogEvent) => void,
): Promise<void> {
  const response = await apiFetch(`/api/v1/logs/stream?source=${source}`, { signal });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  for await (const data of sseData(response.body)) {
    const event = JSON.parse(data) as LogEvent & { source?: string; dropped?: number };
    if (event.source !== undefined || event.dropped !== undefined) continue; // ready / dropped notices
    onEvent(event);
  }
}

/** A log event as one line of text. */
export function logLine(event: LogEvent): string {
  if (event.type === "llm.prediction.input") return `${event.modelIdentifier ?? ""} ◀ ${event.input ?? ""}`;
  if (event.type === "llm.prediction.output") return `${event.modelIdentifier ?? ""} ▶ ${event.output ?? ""}`;
  return `${event.level ?? ""} ${event.message ?? ""}`.trim();
}

/** The endpoints a client can call, by API (docs/http-api.md). */
export const ENDPOINTS: { api: string; routes: [string, string][] }[] = [
  {
    api: "OpenAI",
    routes: [
      ["GET", "/v1/models"],
      ["POST", "/v1/chat/completions"],
      ["POST", "/v1/completions"],
      ["POST", "/v1/embeddings"],
    ],
  },
  { api: "OpenAI Responses", routes: [["POST", "/v1/responses"]] },
  { api: "Anthropic", routes: [["POST", "/v1/messages"]] },
  {
    api: "LM Studio REST v0",
    routes: [
      ["GET", "/api/v0/models"],
      ["POST", "/api/v0/chat/completions"],
      ["POST", "/api/v0/completions"],
      ["POST", "/api/v0/embeddings"],
    ],
  },
  {
    api: "LM Studio REST v1",
    routes: [
      ["GET", "/api/v1/models"],
      ["POST", "/api/v1/chat"],
      ["POST", "/api/v1/models/load"],
      ["POST", "/api/v1/models/unload"],
      ["POST", "/api/v1/models/download"],
      ["GET", "/api/v1/logs/stream"],
    ],
  },
];
