// The Models page's calls to openlms's public HTTP API (docs/http-api.md: "Models", "Memory estimate",
// "Per-model settings", "Prompt template"). A script can make the same calls.
import { ApiError, apiFetch, getJson, sendJson, sseData } from '../lib/api';

export interface InstanceConfig {
  context_length?: number;
  eval_batch_size?: number;
  flash_attention?: boolean | null;
  parallel?: number;
  gpu?: string | number;
  gpu_layers?: number;
  ttl_seconds?: number | null;
  k_cache_type?: string;
  v_cache_type?: string;
}

export interface Instance {
  id: string;
  status: string;
  config: InstanceConfig;
  progress?: number;
  active_requests?: number;
  jit?: boolean;
  ttl_seconds?: number | null;
}

export interface Model {
  key: string;
  type: 'llm' | 'embedding';
  publisher: string;
  display_name: string;
  architecture: string | null;
  quantization: { name: string | null; bits_per_weight: number | null } | null;
  size_bytes: number;
  params_string: string | null;
  max_context_length: number | null;
  capabilities?: { vision?: boolean; trained_for_tool_use?: boolean; reasoning?: boolean };
  path: string;
  error: string | null;
  loaded_instances: Instance[];
}

/** Every downloaded model (LLMs and embedding models) with its loaded instances. */
export async function listDownloaded(): Promise<Model[]> {
  return (await getJson<{ models: Model[] }>('/api/v1/models')).models;
}

/** What `POST /api/v1/models/load` and `/estimate` take as `config` (unset fields: the defaults). */
export interface LoadSettings {
  context_length?: number;
  gpu?: 'max' | 'off' | number;
  flash_attention?: boolean;
  k_cache_type?: string;
  v_cache_type?: string;
  parallel?: number;
}

export interface Estimate {
  context_length: number;
  parallel: number | null;
  gpu_offload: boolean;
  weights_bytes: number;
  kv_cache_bytes: number;
  compute_bytes: number;
  gpu_bytes: number;
  total_bytes: number;
  guardrails: { mode: string; fits: boolean; limit_bytes: number | null; message: string };
}

export function estimate(model: string, config: LoadSettings, signal?: AbortSignal): Promise<Estimate> {
  return getJson<Estimate>('/api/v1/models/estimate', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, config }),
    signal,
  });
}

export interface LoadRequest {
  model: string;
  identifier?: string;
  ttl?: number;
  config: LoadSettings;
}

/** Load with these settings, telling `onProgress` how far it is (0..1); the server's error throws. */
export async function loadWith(request: LoadRequest, onProgress: (fraction: number) => void): Promise<void> {
  const response = await apiFetch('/api/v1/models/load', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...request, stream: true }),
  });
  if (!response.ok) throw await errorFrom(response);
  if (!response.body) return;
  for await (const data of sseData(response.body)) {
    const event = JSON.parse(data) as { progress?: number; error?: { message?: string } };
    if (event.error) throw new ApiError(event.error.message ?? 'The model could not be loaded.', 500);
    if (typeof event.progress === 'number') onProgress(event.progress);
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const err = (JSON.parse(text) as { error?: { message?: string } | string }).error;
    const message = typeof err === 'string' ? err : err?.message;
    if (message) return new ApiError(message, response.status);
  } catch {
    // not JSON
  }
  return new ApiError(text || `HTTP ${response.status}`, response.status);
}

export async function unload(instanceId: string): Promise<void> {
  await sendJson('POST', '/api/v1/models/unload', { instance_id: instanceId });
}

/** Per-model settings (camelCase, store/model_config.py); unknown fields are kept as they are. */
export interface ModelSettings {
  load: Record<string, unknown>;
  prediction: Record<string, unknown>;
}

const configUrl = (key: string): string => `/api/v1/models/config?model=${encodeURIComponent(key)}`;

export async function getSettings(key: string): Promise<ModelSettings> {
  const body = await getJson<Partial<ModelSettings>>(configUrl(key));
  return { load: body.load ?? {}, prediction: body.prediction ?? {} };
}

export function putSettings(key: string, settings: ModelSettings): Promise<ModelSettings> {
  return sendJson<ModelSettings>('PUT', configUrl(key), settings);
}

export async function resetSettings(key: string): Promise<void> {
  await sendJson('DELETE', configUrl(key));
}

/** LM Studio's LLMPromptTemplate. */
export interface PromptTemplate {
  type: 'jinja' | 'manual';
  jinjaPromptTemplate?: { template: string };
  manualPromptTemplate?: Record<string, string>;
  stopStrings?: string[];
}

export interface OwnTemplate {
  source: 'gguf' | 'builtin' | 'none';
  builtin: string | null;
  promptTemplate: PromptTemplate | null;
}

export function ownTemplate(key: string): Promise<OwnTemplate> {
  return getJson<OwnTemplate>(`/api/v1/models/template?model=${encodeURIComponent(key)}`);
}

/** The exact prompt the loaded instance `identifier` builds for `messages` with `template` (null: the
 * template in force); nothing is generated or saved. */
export async function previewPrompt(
  identifier: string,
  messages: { role: string; content: string }[],
  template: PromptTemplate | null,
): Promise<string> {
  const body = await sendJson<{ prompt: string }>('POST', '/api/v1/apply-template', {
    model: identifier,
    messages,
    ...(template ? { prompt_template: template } : {}),
  });
  return body.prompt;
}
