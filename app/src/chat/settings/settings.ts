// A chat's inference settings (saved in the conversation's `settings`), what they send with each
// request to /api/v0/chat/completions, and LM Studio's preset fields (`llm.prediction.*`) they map to.
// Pure: no DOM, no network. A setting left out (undefined) is the model's own default.

export const OVERFLOW_POLICIES = ["stopAtLimit", "truncateMiddle", "rollingWindow"] as const;
export type OverflowPolicy = (typeof OVERFLOW_POLICIES)[number];

export interface ChatSettings {
  temperature?: number;
  maxTokens?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  contextOverflowPolicy?: OverflowPolicy;
  stopStrings?: string[];
  /** A JSON schema (text) the answer must follow. */
  jsonSchema?: string;
  /** Speculative decoding: the key of the draft model. */
  draftModel?: string;
  /** The preset the chat's settings came from (its identifier). */
  preset?: string;
  /** The MCP servers (and tools) switched on for the chat (program/tools.svelte.ts). */
  mcp?: Record<string, { off?: string[] }>;
}

/** The numeric settings, in the order the sidebar shows them, with their input limits. */
export const NUMBERS = [
  { key: "temperature", min: 0, max: 2, step: 0.05 },
  { key: "maxTokens", min: 1, max: undefined, step: 1 },
  { key: "topK", min: 0, max: undefined, step: 1 },
  { key: "topP", min: 0, max: 1, step: 0.01 },
  { key: "minP", min: 0, max: 1, step: 0.01 },
  { key: "repeatPenalty", min: 0.01, max: undefined, step: 0.01 },
] as const;
export type NumberKey = (typeof NUMBERS)[number]["key"];

/** The JSON schema as an object, or undefined when empty; throws when it is not a JSON object. */
export function parsedSchema(text: string | undefined): Record<string, unknown> | undefined {
  if (!text?.trim()) return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
  return value as Record<string, unknown>;
}

function schemaOrNothing(text: string | undefined): Record<string, unknown> | undefined {
  try {
    return parsedSchema(text);
  } catch {
    return undefined; // the sidebar says it is not valid; the chat still answers
  }
}

/** The request fields (the server's names) these settings add to a chat request. */
export function requestFields(settings: ChatSettings | undefined): Record<string, unknown> {
  const s = settings ?? {};
  const fields: Record<string, unknown> = {
    temperature: s.temperature,
    max_tokens: s.maxTokens,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    repeat_penalty: s.repeatPenalty,
    context_overflow_policy: s.contextOverflowPolicy,
    stop: s.stopStrings?.length ? s.stopStrings : undefined,
    draft_model: s.draftModel || undefined,
  };
  const schema = schemaOrNothing(s.jsonSchema);
  if (schema) fields.response_format = { type: "json_schema", json_schema: { name: "answer", schema } };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

// ---- LM Studio preset fields ------------------------------------------------------------------

export interface KVField {
  key: string;
  value: unknown;
}

const P = "llm.prediction.";
const CHECKBOX = new Set(["maxTokens", "topP", "minP", "repeatPenalty"]);
const KV_NAMES: Record<Exclude<keyof ChatSettings, "preset" | "jsonSchema" | "mcp">, string> = {
  temperature: "temperature",
  maxTokens: "maxPredictedTokens",
  topK: "topKSampling",
  topP: "topPSampling",
  minP: "minPSampling",
  repeatPenalty: "repeatPenalty",
  contextOverflowPolicy: "contextOverflowPolicy",
  stopStrings: "stopStrings",
  draftModel: "speculativeDecoding.draftModel",
};
const SYSTEM_PROMPT = `${P}systemPrompt`;
const STRUCTURED = `${P}structured`;
/** Every preset key the sidebar edits (an update keeps the preset's other keys as they are). */
export const MANAGED_KEYS = new Set([...Object.values(KV_NAMES).map((n) => P + n), SYSTEM_PROMPT, STRUCTURED]);

/** A chat's system prompt and settings as a preset's `operation.fields`. */
export function toFields(systemPrompt: string, settings: ChatSettings): KVField[] {
  const fields: KVField[] = [];
  if (systemPrompt.trim()) fields.push({ key: SYSTEM_PROMPT, value: systemPrompt });
  for (const [name, kv] of Object.entries(KV_NAMES) as [keyof typeof KV_NAMES, string][]) {
    const value = settings[name];
    if (value === undefined || value === "" || (Array.isArray(value) && !value.length)) continue;
    fields.push({ key: P + kv, value: CHECKBOX.has(name) ? { checked: true, value } : value });
  }
  const schema = schemaOrNothing(settings.jsonSchema);
  if (schema) fields.push({ key: STRUCTURED, value: { type: "json", jsonSchema: schema } });
  return fields;
}

function plain(value: unknown): unknown {
  if (value && typeof value === "object" && "checked" in value) {
    const box = value as { checked?: boolean; value?: unknown };
    return box.checked ? box.value : undefined;
  }
  return value;
}

/** A preset's fields as a system prompt and settings (keys the sidebar does not edit are left out). */
export function fromFields(fields: KVField[], preset?: string): { systemPrompt: string; settings: ChatSettings } {
  const byKey = new Map(fields.map((f) => [f.key, f.value]));
  const settings: ChatSettings = { preset };
  for (const [name, kv] of Object.entries(KV_NAMES) as [keyof typeof KV_NAMES, string][]) {
    const value = plain(byKey.get(P + kv));
    if (name === "stopStrings") {
      if (Array.isArray(value)) settings.stopStrings = value.map(String);
    } else if (name === "contextOverflowPolicy" || name === "draftModel") {
      if (typeof value === "string" && value) (settings[name] as string) = value;
    } else if (typeof value === "number") {
      settings[name] = value;
    }
  }
  const structured = byKey.get(STRUCTURED) as { type?: string; jsonSchema?: unknown } | undefined;
  if (structured?.type === "json" && structured.jsonSchema) {
    settings.jsonSchema = JSON.stringify(structured.jsonSchema, null, 2);
  }
  const prompt = byKey.get(SYSTEM_PROMPT);
  return { systemPrompt: typeof prompt === "string" ? prompt : "", settings };
}

/** Whether a chat's system prompt and settings are what the preset's fields say. */
export function matchesFields(systemPrompt: string, settings: ChatSettings, fields: KVField[]): boolean {
  const mine = JSON.stringify(toFields(systemPrompt, settings));
  const { systemPrompt: p, settings: s } = fromFields(fields);
  return mine === JSON.stringify(toFields(p, s));
}

/** The preset's fields with the sidebar's replaced by the chat's (keys it does not edit are kept). */
export function mergedFields(existing: KVField[], systemPrompt: string, settings: ChatSettings): KVField[] {
  return existing.filter((f) => !MANAGED_KEYS.has(f.key)).concat(toFields(systemPrompt, settings));
}
