// What the chat list remembers in this browser across reloads: the chat that was open and the folders
// that were collapsed (localStorage; the chats themselves are on the server).
const CURRENT_KEY = "openlms.chat.current";
const COLLAPSED_KEY = "openlms.folders.collapsed";

export function rememberCurrent(id: string): void {
  if (!id.startsWith("local-")) localStorage.setItem(CURRENT_KEY, id);
}

export function forgetCurrent(): void {
  localStorage.removeItem(CURRENT_KEY);
}

export function rememberedCurrent(): string | null {
  return localStorage.getItem(CURRENT_KEY);
}

export function collapsedFolders(): string[] {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(COLLAPSED_KEY) ?? "[]");
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    return [];
  }
}

export function rememberCollapsed(paths: readonly string[]): void {
  localStorage.setItem(COLLAPSED_KEY, JSON.stringify(paths));
}
