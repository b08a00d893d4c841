// A chat's MCP tools: which servers and tools are switched on (the chat's `settings.mcp`), their schemas
// as the request's `tools`, and running the calls the model makes, each after the user's consent (Allow
// once / Always allow this tool / Deny; "always" is remembered in this browser, per server and tool).
import type { ToolCall } from "../lib/api";
import type { ChatMessage } from "../chat/conversation";
import { newId } from "../chat/conversation";
import type { ChatSettings } from "../chat/settings/settings";
import { t } from "../i18n/index.svelte";
import { callTool, readConfig, serverTools } from "./api";

/** A server switched on for a chat; `off` lists its tools switched off. */
export interface McpChoice {
  off?: string[];
}
export type McpChoices = Record<string, McpChoice>;
export type Choice = "once" | "always" | "deny";

export function serverOn(settings: ChatSettings | undefined, server: string): boolean {
  return Boolean(settings?.mcp?.[server]);
}

export function toolOn(settings: ChatSettings | undefined, server: string, tool: string): boolean {
  const choice = settings?.mcp?.[server];
  return Boolean(choice) && !choice?.off?.includes(tool);
}

/** The settings with `server` switched on (all its tools) or off. */
export function withServer(settings: ChatSettings | undefined, server: string, on: boolean): ChatSettings {
  const mcp: McpChoices = { ...(settings?.mcp ?? {}) };
  if (on) mcp[server] = {};
  else delete mcp[server];
  return { ...settings, mcp };
}

/** The settings with one tool of a switched-on server switched on or off. */
export function withTool(settings: ChatSettings | undefined, server: string, tool: string, on: boolean): ChatSettings {
  const mcp: McpChoices = { ...(settings?.mcp ?? {}) };
  const off = (mcp[server]?.off ?? []).filter((name) => name !== tool);
  mcp[server] = { off: on ? off : [...off, tool] };
  return { ...settings, mcp };
}

/** What a chat's answer offers: the tools (OpenAI's shape), whose server each is, the round limit. */
export interface ChatTools {
  fields: { tools: unknown[] };
  owner: Map<string, string>;
  rounds: number;
}

/** The chat's switched-on tools, or null when it has none (only its switched-on servers are started;
 * one that cannot start is left out; when none can, their errors are thrown: the chat's notice). */
export async function chatTools(settings: ChatSettings | undefined): Promise<ChatTools | null> {
  const wanted = Object.keys(settings?.mcp ?? {});
  if (!wanted.length) return null;
  const [listed, config] = await Promise.all([Promise.allSettled(wanted.map(serverTools)), readConfig()]);
  const owner = new Map<string, string>();
  const tools: unknown[] = [];
  const failed: string[] = [];
  for (const [i, result] of listed.entries()) {
    const server = wanted[i];
    if (result.status === "rejected") {
      failed.push(result.reason instanceof Error ? result.reason.message : String(result.reason));
      continue;
    }
    for (const tool of result.value) {
      if (owner.has(tool.name) || !toolOn(settings, server, tool.name)) continue;
      owner.set(tool.name, server);
      tools.push({ type: "function", function: { name: tool.name, description: tool.description, parameters: tool.input_schema } });
    }
  }
  if (failed.length && !tools.length) throw new Error(failed.join(" "));
  return tools.length ? { fields: { tools }, owner, rounds: config.max_tool_rounds } : null;
}

// ---- consent -----------------------------------------------------------------------------------------

export interface ConsentAsk {
  server: string;
  tool: string;
  args: string;
  resolve: (choice: Choice) => void;
}

/** The call waiting for the user's answer (the consent dialog shows it). */
export const consent = $state<{ pending: ConsentAsk | null }>({ pending: null });

const ALWAYS_KEY = "openlms.mcp.alwaysAllowed";

function allowedAlways(): string[] {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(ALWAYS_KEY) ?? "[]");
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}

export function isAlwaysAllowed(server: string, tool: string): boolean {
  return allowedAlways().includes(`${server}/${tool}`);
}

function allowAlways(server: string, tool: string): void {
  const all = new Set(allowedAlways()).add(`${server}/${tool}`);
  localStorage.setItem(ALWAYS_KEY, JSON.stringify([...all]));
}

/** Ask the user about one call (one question at a time). */
function ask(server: string, tool: string, args: string): Promise<Choice> {
  return new Promise((resolve) => {
    consent.pending = {
      server,
      tool,
      args,
      resolve: (choice) => {
        consent.pending = null;
        if (choice === "always") allowAlways(server, tool);
        resolve(choice);
      },
    };
  });
}

// ---- running the calls -------------------------------------------------------------------------------

/** The tool messages answering `calls`: each run after consent, or denied, or what went wrong. */
export async function runCalls(calls: ToolCall[], tools: ChatTools): Promise<ChatMessage[]> {
  const results: ChatMessage[] = [];
  for (const call of calls) {
    const content = await runOne(call, tools);
    results.push({ id: newId(), role: "tool", content, toolCallId: call.id });
  }
  return results;
}

async function runOne(call: ToolCall, tools: ChatTools): Promise<string> {
  const server = tools.owner.get(call.name);
  if (!server) return t("program.result.unknown", { name: call.name });
  let args: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(call.arguments || "{}");
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    args = parsed as Record<string, unknown>;
  } catch {
    return t("program.result.badArguments", { name: call.name });
  }
  const choice = isAlwaysAllowed(server, call.name) ? "once" : await ask(server, call.name, call.arguments);
  if (choice === "deny") return t("program.result.denied", { name: call.name });
  try {
    return (await callTool(server, call.name, args)).output;
  } catch (err) {
    return t("program.result.failed", { name: call.name, reason: err instanceof Error ? err.message : String(err) });
  }
}
