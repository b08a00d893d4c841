// The presets API (`/api/v1/presets`, docs/http-api.md "Presets"): LM Studio-format preset files in
// ~/.lmstudio/config-presets/, the ones SDK requests name with `preset=`.
import { getJson, sendJson } from "../lib/api";
import type { KVField } from "../chat/settings/settings";

export interface Preset {
  identifier: string;
  name: string;
  operation: { fields: KVField[] };
  load: { fields: KVField[] };
}

const BASE = "/api/v1/presets";

function path(identifier: string): string {
  return `${BASE}/${encodeURIComponent(identifier)}`;
}

export async function listPresets(): Promise<Preset[]> {
  return (await getJson<{ presets: Preset[] }>(BASE)).presets;
}

export function createPreset(name: string, fields: KVField[]): Promise<Preset> {
  return sendJson<Preset>("POST", BASE, { name, operation: { fields } });
}

export function updatePreset(preset: Preset, fields: KVField[]): Promise<Preset> {
  return sendJson<Preset>("PUT", path(preset.identifier), { name: preset.name, operation: { fields }, load: preset.load });
}

export async function deletePreset(identifier: string): Promise<void> {
  await sendJson("DELETE", path(identifier));
}

/** Import a preset from a URL (the server fetches it) or from a file's JSON (read here). */
export function importPreset(source: { url: string } | { preset: unknown }): Promise<Preset> {
  return sendJson<Preset>("POST", `${BASE}/import`, source);
}
