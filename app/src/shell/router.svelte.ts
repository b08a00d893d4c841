// A tiny hash router: "#/chat/abc" -> route "/chat/:id" with params { id: "abc" }.
// Views register in shell/routes.ts; the outlet (Outlet.svelte) shows the matching one.
import type { Component } from "svelte";

export interface Route {
  /** "/settings", "/chat/:id" */
  path: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- views take `params` or nothing
  component: Component<any>;
  /** i18n key of the page's title (the document title and the sidebar link) */
  title: string;
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

function currentPath(): string {
  const hash = window.location.hash.replace(/^#/, "");
  return hash.startsWith("/") ? hash : "/" + hash;
}

export const location = $state({ path: currentPath() });

window.addEventListener("hashchange", () => {
  location.path = currentPath();
});

export function navigate(path: string): void {
  window.location.hash = path;
}

/** `#/path` for an href. */
export function href(path: string): string {
  return "#" + path;
}

function matchOne(route: Route, path: string): Match | null {
  const want = route.path.split("/").filter(Boolean);
  const got = path.split("?")[0].split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, part] of want.entries()) {
    if (part.startsWith(":")) params[part.slice(1)] = decodeURIComponent(got[i]);
    else if (part !== got[i]) return null;
  }
  return { route, params };
}

export function match(routes: readonly Route[], path: string): Match | null {
  for (const route of routes) {
    const found = matchOne(route, path);
    if (found) return found;
  }
  return null;
}
