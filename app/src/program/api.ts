// The Program panel's calls: the MCP servers of mcp.json (`/api/v1/mcp/servers`), the file as text
// (`/api/v1/mcp/config`), install links (`/api/v1/mcp/deeplink`) and a tool call the user allowed
// (`/api/v1/mcp/servers/{name}/tools/{tool}/call`). docs/http-api.md describes them.
import { getJson, sendJson } from "../lib/api";

export interface McpTool {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

export interface McpServer {
  name: string;
  type: "stdio" | "http" | "sse";
  status: "stopped" | "starting" | "running" | "failed";
  error: string | null;
  command: string | null;
  url: string | null;
  tools: McpTool[] | null;
}

export interface McpConfigText {
  path: string;
  text: string;
  exists: boolean;
  max_tool_rounds: number;
}

export interface LinkPreview {
  name: string;
  type: "stdio" | "http" | "sse";
  command: string | null;
  args: string[];
  url: string | null;
  env_keys: string[];
  header_keys: string[];
  replaces: boolean;
  installed: boolean;
}

export interface CallResult {
  ok: boolean;
  output: string;
  error: string | null;
}

const BASE = "/api/v1/mcp";

/** The servers in file order; `withTools` starts them to list their tools (a failure is a status). */
export async function listServers(withTools: boolean): Promise<McpServer[]> {
  const body = await getJson<{ servers: McpServer[] }>(`${BASE}/servers${withTools ? "?tools=true" : ""}`);
  return body.servers;
}

/** One server's tools (it is started if need be; no other server is). */
export async function serverTools(name: string): Promise<McpTool[]> {
  const body = await getJson<{ tools: McpTool[] }>(`${BASE}/servers/${encodeURIComponent(name)}/tools`);
  return body.tools;
}

export function readConfig(): Promise<McpConfigText> {
  return getJson<McpConfigText>(`${BASE}/config`);
}

export function saveConfig(text: string): Promise<{ path: string; servers: string[] }> {
  return sendJson("PUT", `${BASE}/config`, { text });
}

export function linkPreview(link: string, install = false): Promise<LinkPreview> {
  return sendJson<LinkPreview>("POST", `${BASE}/deeplink`, { link, install });
}

export function callTool(server: string, tool: string, args: Record<string, unknown>): Promise<CallResult> {
  const path = `${BASE}/servers/${encodeURIComponent(server)}/tools/${encodeURIComponent(tool)}/call`;
  return sendJson<CallResult>("POST", path, { arguments: args });
}

/** The line an mcp.json error names ("…: line 4: …", "… at line 2, column 5"), or null. */
export function errorLine(message: string): number | null {
  const found = /\bline (\d+)\b/.exec(message);
  return found ? Number(found[1]) : null;
}
