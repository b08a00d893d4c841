// The chat list's folders and the actions on chats and folders beyond chatting: new folder, rename, move
// (drag and drop or "Move to…"), duplicate, delete with Undo, search; the tree re-read after each.
import type { ChatController } from "../chat/controller.svelte";
import type { Conversation } from "../chat/conversation";
import type { MessageKey } from "../i18n/index.svelte";
import { ApiError } from "../lib/api";
import * as api from "./api";
import { collapsedFolders, rememberCollapsed } from "./remember";
import { buildTree, freeName, isWithin, joinPath, nameOf, parentOf, type FolderNode } from "./tree";

type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

/** What a drag carries: a chat (its id) or a folder (its path). */
export interface Dragged {
  kind: "chat" | "folder";
  key: string;
}

export class Folders {
  folders = $state<string[]>([]);
  skipped = $state<api.Skipped[]>([]);
  collapsed = $state<string[]>(collapsedFolders());
  /** The folder deleted last, while it can be put back (a chat's Undo is the controller's). */
  undo = $state<{ token: string; title: string } | null>(null);
  /** The folder whose name is being edited (a new folder starts so). */
  renaming = $state<string | null>(null);
  /** The chat the search opened, and the message it matched (scrolled into view). */
  found = $state<{ id: string; index: number } | null>(null);
  /** What is being dragged now. */
  dragged = $state<Dragged | null>(null);
  private available = true;

  constructor(
    private readonly chat: ChatController,
    private readonly t: Translate,
  ) {}

  get tree(): FolderNode {
    return buildTree(this.folders, this.chat.conversations);
  }

  /** Read the folders and chats again, keeping the messages of chats already read. */
  async refresh(): Promise<void> {
    if (!this.available) return;
    try {
      const listing = await api.listing();
      this.folders = listing.folders;
      this.skipped = listing.skipped;
      this.merge(listing.conversations);
    } catch (err) {
      // a server without the API (or not for this page): the chats stay in the page, without folders
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) this.available = false;
      else this.chat.notice = err instanceof Error ? err.message : String(err);
    }
  }

  private merge(summaries: api.Summary[]): void {
    const known = new Map(this.chat.conversations.map((c) => [c.id, c]));
    const fresh: Conversation[] = [];
    for (const s of summaries) {
      const chat = known.get(s.id);
      if (chat) {
        chat.folder = s.folder;
        if (chat.loaded === false) chat.title = s.title; // an open chat's own title may be saving now
      } else {
        fresh.push({ id: s.id, title: s.title, folder: s.folder, model: s.model ?? undefined, messages: [],
          loaded: false, createdAt: s.createdAt ?? 0, updatedAt: s.updatedAt ?? 0 });
      }
    }
    const listed = new Set(summaries.map((s) => s.id));
    const kept = this.chat.conversations.filter((c) => listed.has(c.id) || c.id.startsWith("local-"));
    this.chat.conversations = [...fresh, ...kept];
  }

  isCollapsed(path: string): boolean {
    return this.collapsed.includes(path);
  }

  toggle(path: string): void {
    this.collapsed = this.isCollapsed(path) ? this.collapsed.filter((p) => p !== path) : [...this.collapsed, path];
    rememberCollapsed(this.collapsed);
  }

  /** A new folder in `parent` ("New folder", numbered when taken), its name ready to edit. */
  async newFolder(parent = ""): Promise<void> {
    const taken = this.folders.filter((f) => parentOf(f) === parent).map(nameOf);
    const path = joinPath(parent, freeName(this.t("conversations.newFolderName"), taken));
    await this.act(async () => {
      const made = await api.createFolder(path);
      if (parent && this.isCollapsed(parent)) this.toggle(parent);
      await this.refresh();
      this.renaming = made.path;
    });
  }

  /** A new chat in `folder` (saved there with its first answer), opened. */
  newChatIn(folder: string): void {
    this.chat.newChat();
    const current = this.chat.current;
    if (current?.id.startsWith("local-") && current.messages.length === 0) current.folder = folder;
    if (this.isCollapsed(folder)) this.toggle(folder);
  }

  async renameFolder(path: string, name: string): Promise<void> {
    const next = name.trim();
    if (!next || next === nameOf(path)) return;
    await this.act(async () => {
      const moved = await api.moveFolder(path, null, next);
      this.followCollapsed(path, moved.path);
    });
  }

  /** Move a chat or a folder into `folder` ("" is the top). */
  async moveInto(item: Dragged, folder: string): Promise<void> {
    if (item.kind === "chat") {
      const chat = this.chat.conversations.find((c) => c.id === item.key);
      if (!chat || (chat.folder ?? "") === folder) return;
      if (chat.id.startsWith("local-")) {
        chat.folder = folder; // not saved yet: its first save puts it there
        return;
      }
      await this.act(() => api.moveChat(item.key, folder));
      return;
    }
    if (parentOf(item.key) === folder || isWithin(folder, item.key)) return;
    await this.act(async () => {
      const moved = await api.moveFolder(item.key, folder);
      this.followCollapsed(item.key, moved.path);
    });
  }

  async duplicate(id: string): Promise<void> {
    await this.act(async () => {
      const copy = await api.duplicateChat(id);
      await this.refresh();
      this.chat.select(copy.id);
    });
  }

  async deleteFolder(path: string): Promise<void> {
    if (this.chat.busy && isWithin(this.chat.current?.folder ?? "", path)) return;
    await this.act(async () => {
      const entry = await api.deleteFolder(path);
      this.chat.undo = null;
      this.undo = { token: entry.id, title: nameOf(path) };
    });
    if (!this.chat.current) {
      const next = this.chat.conversations[0];
      if (next) this.chat.select(next.id);
      else this.chat.newChat();
    }
  }

  async deleteChat(id: string): Promise<void> {
    await this.chat.deleteChat(id);
    if (this.chat.undo) this.undo = null;
  }

  async undoDelete(): Promise<void> {
    const undo = this.undo;
    if (undo) {
      this.undo = null;
      await this.act(() => api.restore(undo.token));
      return;
    }
    await this.chat.undoDelete();
    await this.refresh();
  }

  /** Open a search result: its chat, scrolled to the message that matched. */
  open(result: api.SearchResult): void {
    if (this.chat.busy) return;
    this.chat.select(result.id);
    this.found = result.messageIndex === null ? null : { id: result.id, index: result.messageIndex };
  }

  /** True when the dragged chat or folder may be dropped into `folder`. */
  canDrop(folder: string): boolean {
    const item = this.dragged;
    if (!item) return false;
    if (item.kind === "chat") return (this.chat.conversations.find((c) => c.id === item.key)?.folder ?? "") !== folder;
    return parentOf(item.key) !== folder && !isWithin(folder, item.key);
  }

  /** Drop what is being dragged into `folder`. */
  async drop(folder: string): Promise<void> {
    const item = this.dragged;
    this.dragged = null;
    if (item) await this.moveInto(item, folder);
  }

  private followCollapsed(from: string, to: string): void {
    if (!this.collapsed.some((p) => isWithin(p, from))) return;
    this.collapsed = this.collapsed.map((p) => (isWithin(p, from) ? to + p.slice(from.length) : p));
    rememberCollapsed(this.collapsed);
  }

  /** Run an action, show its error as the chat's notice, and read the tree again. */
  private async act(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      this.chat.notice = "";
    } catch (err) {
      this.chat.notice = err instanceof Error ? err.message : String(err);
    }
    await this.refresh();
  }
}

let shared: Folders | null = null;

/** The page's one folder state (made on first use), beside the chat controller. */
export function sharedFolders(chat: ChatController, t: Translate): Folders {
  shared ??= new Folders(chat, t);
  return shared;
}
