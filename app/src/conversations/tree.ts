// The chat list's folder tree, built from the API's folder paths and the chats (pure: no DOM, no network).
import type { Conversation } from "../chat/conversation";

export interface FolderNode {
  /** "" is the top; otherwise "Work/Drafts". */
  path: string;
  name: string;
  folders: FolderNode[];
  chats: Conversation[];
}

export function parentOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
}

export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function joinPath(parent: string, name: string): string {
  return parent ? `${parent}/${name}` : name;
}

/** True when `path` is `folder` or inside it. */
export function isWithin(path: string, folder: string): boolean {
  return path === folder || path.startsWith(`${folder}/`);
}

/** The tree: folders by name, chats in the order given (newest first). Folders a chat names but the
 * listing lacks are made too. */
export function buildTree(folders: readonly string[], chats: readonly Conversation[]): FolderNode {
  const root: FolderNode = { path: "", name: "", folders: [], chats: [] };
  const byPath = new Map<string, FolderNode>([["", root]]);
  const ensure = (path: string): FolderNode => {
    const found = byPath.get(path);
    if (found) return found;
    const node: FolderNode = { path, name: nameOf(path), folders: [], chats: [] };
    byPath.set(path, node);
    ensure(parentOf(path)).folders.push(node);
    return node;
  };
  for (const path of folders) ensure(path);
  for (const chat of chats) ensure(chat.folder ?? "").chats.push(chat);
  const sort = (node: FolderNode): void => {
    node.folders.sort((a, b) => a.name.localeCompare(b.name));
    node.folders.forEach(sort);
  };
  sort(root);
  return root;
}

/** Every folder path, parents before their folders, by name (what "Move to…" offers). */
export function allFolders(node: FolderNode): string[] {
  return node.folders.flatMap((f) => [f.path, ...allFolders(f)]);
}

/** A name not taken among `taken` ("New folder", "New folder 2", ...). */
export function freeName(base: string, taken: readonly string[]): string {
  if (!taken.includes(base)) return base;
  let n = 2;
  while (taken.includes(`${base} ${n}`)) n += 1;
  return `${base} ${n}`;
}

/** The folders a folder at `path` may move into: not itself, not one of its own, not where it is. */
export function folderTargets(all: readonly string[], path: string): string[] {
  return ["", ...all].filter((f) => !isWithin(f, path) && f !== parentOf(path));
}
