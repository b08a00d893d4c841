// The chat view's state and actions: the chats, the model, streaming an answer, stop, regenerate, edit, delete.
import { listModels, loadModel, streamChat, type ModelEntry, type StreamEvent } from '../lib/api';
import {
  addToolCallFragment,
  beforeLastAnswer,
  newConversation,
  newId,
  titleFrom,
  toWire,
  upTo,
  withIds,
  type ChatMessage,
  type Conversation,
} from './conversation';
import { chooseStore, LOCAL_PREFIX, type ConversationStore } from './store';
import { addDrafted } from './settings/draft';
import { chatTools, runCalls } from '../program/tools.svelte';
import { requestFields } from './settings/settings';
import { branchChat } from '../conversations/api';
import { continueAnswer } from '../conversations/continue';
import { withDocuments } from '../documents/attach';
import { forgetCurrent, rememberCurrent, rememberedCurrent } from '../conversations/remember';
import type { MessageKey } from '../i18n/index.svelte';

type Translate = (key: MessageKey) => string;

export class ChatController {
  conversations = $state<Conversation[]>([]);
  currentId = $state<string | null>(null);
  models = $state<ModelEntry[]>([]);
  model = $state('');
  busy = $state(false);
  loadingModel = $state(false);
  /** How far the model's load is, 0..1. */
  loadProgress = $state(0);
  /** A problem outside any message (the model list could not be read, a load failed). */
  notice = $state('');
  /** The chat deleted last, while it can be put back. */
  undo = $state<{ token: string; title: string } | null>(null);
  private abort: AbortController | null = null;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ConversationStore,
    private readonly t: Translate,
  ) {}

  get current(): Conversation | undefined {
    return this.conversations.find((c) => c.id === this.currentId);
  }

  private started: Promise<void> | null = null;

  /** Read the models and the chats once (later calls only refresh the models). */
  init(): Promise<void> {
    if (this.started) {
      void this.refreshModels();
      return this.started;
    }
    this.started = this.start();
    return this.started;
  }

  private async start(): Promise<void> {
    await this.refreshModels();
    try {
      this.conversations = await this.store.list();
    } catch (err) {
      this.notice = messageOf(err);
    }
    const last = rememberedCurrent();
    if (this.conversations.length === 0) this.newChat();
    else this.select(this.conversations.find((c) => c.id === last)?.id ?? this.conversations[0].id);
  }

  async refreshModels(): Promise<void> {
    try {
      this.models = await listModels();
      if (!this.models.some((m) => m.key === this.model)) this.model = defaultModel(this.models);
    } catch (err) {
      this.notice = messageOf(err);
    }
  }

  /** Tokens the chat used at its last answer (prompt + answer), and the loaded model's context length. */
  get contextUsage(): { used: number; total: number | null } | null {
    const answers = (this.current?.messages ?? []).filter((m) => m.role === 'assistant' && m.stats);
    const stats = answers.at(-1)?.stats;
    if (stats?.promptTokens === undefined) return null;
    const used = stats.promptTokens + (stats.completionTokens ?? 0);
    const model = this.models.find((m) => m.key === this.model);
    const total = model?.loaded_instances[0]?.config?.context_length ?? null;
    return { used, total };
  }

  isLoaded(key: string): boolean {
    return this.models.some((m) => m.key === key && m.loaded_instances.length > 0);
  }

  /** Use `key` from now on, loading it first when it is not loaded (the chat would load it anyway). */
  async chooseModel(key: string): Promise<void> {
    this.model = key;
    const chat = this.current;
    if (chat) chat.model = key;
    if (!key || this.isLoaded(key)) return;
    this.loadingModel = true;
    this.loadProgress = 0;
    this.notice = '';
    try {
      await loadModel(key, (fraction) => (this.loadProgress = fraction));
    } catch (err) {
      this.notice = messageOf(err);
    } finally {
      this.loadingModel = false;
      await this.refreshModels();
    }
  }

  newChat(): void {
    if (this.busy) return;
    const empty = this.conversations.find((c) => c.loaded !== false && c.messages.length === 0);
    if (empty) {
      this.currentId = empty.id;
      return;
    }
    const chat = newConversation(this.t('chat.untitled'));
    this.conversations.unshift(chat);
    this.currentId = chat.id;
    forgetCurrent();
  }

  select(id: string): void {
    if (this.busy) return;
    this.currentId = id;
    rememberCurrent(id);
    const chat = this.current;
    if (chat && chat.loaded === false) void this.loadMessages(chat);
    const model = chat?.model;
    if (model && this.models.some((m) => m.key === model)) this.model = model;
  }

  private async loadMessages(chat: Conversation): Promise<void> {
    try {
      const full = await this.store.load(chat.id);
      chat.messages = full.messages;
      chat.systemPrompt = full.systemPrompt;
      chat.settings = full.settings ?? {};
      chat.branchedFrom = full.branchedFrom;
      chat.loaded = true;
    } catch (err) {
      this.notice = messageOf(err);
    }
  }

  async deleteChat(id: string): Promise<void> {
    if (this.busy && id === this.currentId) return;
    const title = this.conversations.find((c) => c.id === id)?.title ?? '';
    this.conversations = this.conversations.filter((c) => c.id !== id);
    await this.guard(async () => {
      const token = await this.store.remove(id);
      this.undo = token ? { token, title } : null;
    });
    if (this.currentId === id) {
      if (this.conversations.length) this.select(this.conversations[0].id);
      else this.newChat();
    }
  }

  async rename(id: string, title: string): Promise<void> {
    const chat = this.conversations.find((c) => c.id === id);
    const name = title.trim();
    if (!chat || !name || name === chat.title) return;
    if (chat.loaded === false) await this.loadMessages(chat);
    if (chat.loaded === false) return;
    chat.title = name;
    await this.persist(chat);
  }

  /** Put the chat deleted last back, and open it. */
  async undoDelete(): Promise<void> {
    const undo = this.undo;
    if (!undo || this.busy) return;
    this.undo = null;
    await this.guard(async () => {
      const chat = await this.store.restore(undo.token);
      this.conversations = this.conversations.filter((c) => c.id !== chat.id);
      this.conversations.unshift({ ...chat, loaded: true });
      this.select(chat.id);
    });
  }

  async send(text: string, files: File[] = []): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy || !text.trim()) return;
    if (chat.loaded === false) await this.loadMessages(chat);
    if (chat.messages.length === 0) chat.title = titleFrom(text);
    const attached = files.length ? { files: files.map((f) => f.name), fileSizes: files.map((f) => f.size) } : {};
    chat.messages.push({ id: newId(), role: 'user', content: text, ...attached });
    if (await this.documents(chat, files)) await this.answer(chat);
  }

  /** The last message's documents (if it has any) uploaded with the saved chat and prepared for the
   * model (documents/attach.ts); false when that failed (the reason is shown as the answer's error). */
  private async documents(chat: Conversation, files: File[] = []): Promise<boolean> {
    const message = chat.messages.at(-1);
    if (!message?.files?.length || !this.model) return true; // no model: the answer says so
    this.busy = true;
    message.prompt = undefined;
    message.sources = undefined;
    try {
      await this.persist(chat); // the chat's first save gives it the server's id
      if (chat.id.startsWith(LOCAL_PREFIX)) throw new Error(this.t('documents.needsServer'));
      const history = toWire(chat.messages, chat.systemPrompt);
      await withDocuments(chat.id, message, files, history, this.model, requestFields(chat.settings).max_tokens);
      return true;
    } catch (err) {
      chat.messages.push({ id: newId(), role: 'assistant', content: '', error: messageOf(err) });
      await this.persist(chat);
      return false;
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    this.abort?.abort();
  }

  async regenerate(): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy) return;
    chat.messages = beforeLastAnswer(chat.messages);
    if (chat.messages.length && (await this.documents(chat))) await this.answer(chat);
  }

  /** Replace a message's text. A user message is answered again (what follows it goes); an answer is
   * kept as edited, and the chat continues from it. */
  async edit(id: string, text: string): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy) return;
    const message = chat.messages.find((m) => m.id === id);
    if (!message) return;
    message.content = text;
    message.error = undefined;
    message.drafted = undefined;
    if (message.role === 'user') {
      chat.messages = upTo(chat.messages, id);
      if (await this.documents(chat)) await this.answer(chat);
    } else {
      await this.persist(chat);
    }
  }

  /** Add a message of either role after the message `afterId` (nothing is answered). */
  async insert(afterId: string, role: 'user' | 'assistant', text: string): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy) return;
    const at = chat.messages.findIndex((m) => m.id === afterId);
    chat.messages.splice(at + 1, 0, { id: newId(), role, content: text });
    await this.persist(chat);
  }

  /** A new chat with the messages up to `id` (the branch API), opened; it points back to this one. */
  async branch(id: string): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy) return;
    await this.saving;
    const index = chat.messages.findIndex((m) => m.id === id);
    if (index < 0) return;
    await this.guard(async () => {
      const doc = await branchChat(chat.id, index);
      this.conversations.unshift({
        id: doc.id,
        title: doc.title,
        folder: doc.folder,
        model: doc.model ?? undefined,
        systemPrompt: doc.systemPrompt ?? '',
        branchedFrom: doc.branchedFrom ?? null,
        messages: withIds(doc.messages),
        loaded: true,
        createdAt: doc.createdAt ?? Date.now(),
        updatedAt: doc.updatedAt ?? Date.now(),
      });
      this.select(doc.id);
    });
  }

  /** Let the model go on writing the last answer (its text so far is kept, the new text added). */
  async continueLast(): Promise<void> {
    const chat = this.current;
    const reply = chat?.messages.at(-1);
    if (!chat || !reply || reply.role !== 'assistant' || this.busy) return;
    const history = toWire(chat.messages.slice(0, -1), chat.systemPrompt);
    const prefix = reply.content;
    reply.error = undefined;
    const fields = requestFields(chat.settings);
    await this.run(chat, reply, (model, signal) => continueAnswer(model, history, prefix, signal, fields));
  }

  /** Save the current chat's system prompt and settings now (a chat never saved keeps them until its
   * first message; during an answer, the answer's save takes them). */
  async saveSettings(): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy || chat.loaded === false) return;
    if (chat.messages.length === 0 && chat.id.startsWith(LOCAL_PREFIX)) return;
    await this.persist(chat);
  }

  async remove(id: string): Promise<void> {
    const chat = this.current;
    if (!chat || this.busy) return;
    chat.messages = chat.messages.filter((m) => m.id !== id);
    await this.persist(chat);
  }

  /** Answer the chat; with MCP tools switched on (the Program panel), run the calls the model makes
   * (each after the user's consent) and answer again, up to the server's mcp_max_tool_rounds. */
  private async answer(chat: Conversation): Promise<void> {
    this.busy = true;
    const tools = await chatTools(chat.settings).catch((err: unknown) => {
      this.notice = messageOf(err);
      return null;
    });
    for (let round = 0; ; round++) {
      const history = toWire(chat.messages, chat.systemPrompt);
      chat.messages.push({ id: newId(), role: 'assistant', content: '', model: this.model, pending: true });
      const reply = chat.messages[chat.messages.length - 1];
      const fields = { ...requestFields(chat.settings), ...tools?.fields };
      await this.run(chat, reply, (model, signal) => streamChat(model, history, signal, fields));
      const stopped = reply.stats?.stopReason === 'userStopped'; // Stop ends the tool loop too
      if (!tools || !reply.toolCalls?.length || reply.error || stopped || round >= tools.rounds) return;
      this.busy = true;
      chat.messages.push(...(await runCalls(reply.toolCalls, tools)));
    }
  }

  /** Stream `source`'s events into `reply` (busy meanwhile; Stop aborts it), then save the chat. */
  private async run(
    chat: Conversation,
    reply: ChatMessage,
    source: (model: string, signal: AbortSignal) => AsyncGenerator<StreamEvent>,
  ): Promise<void> {
    const model = this.model;
    reply.pending = true;
    chat.model = model || chat.model;
    this.busy = true;
    this.abort = new AbortController();
    try {
      if (!model) throw new Error(this.t('chat.error.noModel'));
      await this.stream(reply, source(model, this.abort.signal));
    } catch (err) {
      if (this.abort.signal.aborted) reply.stats = { ...reply.stats, stopReason: 'userStopped' };
      else reply.error = messageOf(err);
    } finally {
      if (!reply.content && !reply.reasoning && !reply.toolCalls?.length && !reply.error) {
        reply.error = this.abort.signal.aborted ? this.t('chat.stoppedEmpty') : this.t('chat.error.empty');
      }
      reply.pending = false;
      this.abort = null;
      await this.persist(chat); // busy until saved: a reload right after an answer keeps it
      this.busy = false;
      void this.refreshModels();
    }
  }

  private async stream(reply: ChatMessage, events: AsyncGenerator<StreamEvent>) {
    for await (const event of events) {
      if (event.kind === 'content') {
        if (event.drafted) reply.drafted = addDrafted(reply.drafted, reply.content, event.text);
        reply.content += event.text;
      }
      else if (event.kind === 'reasoning') reply.reasoning = (reply.reasoning ?? '') + event.text;
      else if (event.kind === 'tool_call') {
        reply.toolCalls = addToolCallFragment(reply.toolCalls ?? [], event.index, event.id, event.name, event.args);
      } else reply.stats = event.stats;
    }
  }

  /** Save `chat` after any save still running (a chat's first save gives it the store's id). */
  private persist(chat: Conversation): Promise<void> {
    chat.updatedAt = Date.now();
    this.saving = this.saving.then(() => this.guard(() => this.saveNow(chat)));
    return this.saving;
  }

  private async saveNow(chat: Conversation): Promise<void> {
    if (!this.conversations.includes(chat)) return; // deleted meanwhile
    if (chat.loaded === false) return; // never save a chat whose messages were not read
    const saved = $state.snapshot(chat) as Conversation;
    saved.messages = saved.messages.map(({ pending: _pending, ...m }) => m);
    delete saved.loaded;
    const id = await this.store.save(saved);
    if (id !== chat.id) {
      if (this.currentId === chat.id) {
        this.currentId = id;
        rememberCurrent(id);
      }
      // the list may have been re-read (a folder action) while this first save ran: one entry per id
      this.conversations = this.conversations.filter((c) => c === chat || c.id !== id);
      chat.id = id;
    }
  }

  private async guard(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
    } catch (err) {
      this.notice = messageOf(err);
    }
  }
}

function defaultModel(models: ModelEntry[]): string {
  const loaded = models.find((m) => m.loaded_instances.length > 0 && !m.error);
  return (loaded ?? models.find((m) => !m.error))?.key ?? '';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

let shared: ChatController | null = null;

/** The page's one chat controller (made on first use). */
export function sharedChat(t: Translate): ChatController {
  shared ??= new ChatController(chooseStore(), t);
  return shared;
}
