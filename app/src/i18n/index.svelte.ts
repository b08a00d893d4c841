// The app's one way to show text: t("key"), reactive on the chosen language.
// Every key lives in every language file (tests/unit/webapp/test_i18n_keys.py checks it).
// Each area of the app has its own folder of language files (./<area>/<lang>.json); the shell and
// the chat use ./<lang>.json. A key lives in exactly one file (the unit test checks it).
import enCore from "./en.json";
import esCore from "./es.json";
import deCore from "./de.json";
import zhCore from "./zh.json";
import enModels from "./models/en.json";
import esModels from "./models/es.json";
import deModels from "./models/de.json";
import zhModels from "./models/zh.json";
import enDiscover from "./discover/en.json";
import esDiscover from "./discover/es.json";
import deDiscover from "./discover/de.json";
import zhDiscover from "./discover/zh.json";
import enPresets from "./presets/en.json";
import esPresets from "./presets/es.json";
import dePresets from "./presets/de.json";
import zhPresets from "./presets/zh.json";
import enConversations from "./conversations/en.json";
import esConversations from "./conversations/es.json";
import deConversations from "./conversations/de.json";
import zhConversations from "./conversations/zh.json";
import enDeveloper from "./developer/en.json";
import esDeveloper from "./developer/es.json";
import deDeveloper from "./developer/de.json";
import zhDeveloper from "./developer/zh.json";
import enProgram from "./program/en.json";
import esProgram from "./program/es.json";
import deProgram from "./program/de.json";
import zhProgram from "./program/zh.json";
import enDocuments from "./documents/en.json";
import esDocuments from "./documents/es.json";
import deDocuments from "./documents/de.json";
import zhDocuments from "./documents/zh.json";

const en = { ...enCore, ...enModels, ...enDiscover, ...enPresets, ...enConversations, ...enDeveloper, ...enProgram, ...enDocuments };
const es = { ...esCore, ...esModels, ...esDiscover, ...esPresets, ...esConversations, ...esDeveloper, ...esProgram, ...esDocuments };
const de = { ...deCore, ...deModels, ...deDiscover, ...dePresets, ...deConversations, ...deDeveloper, ...deProgram, ...deDocuments };
const zh = { ...zhCore, ...zhModels, ...zhDiscover, ...zhPresets, ...zhConversations, ...zhDeveloper, ...zhProgram, ...zhDocuments };

export type Messages = typeof en;
export type MessageKey = keyof Messages;
export const LANGUAGES: Record<"en" | "es" | "de" | "zh", Partial<Messages>> = { en, es, de, zh };
export type Language = keyof typeof LANGUAGES;
export const LANGUAGE_NAMES: Record<Language, string> = {
  en: "English",
  es: "Español",
  de: "Deutsch",
  zh: "中文",
};

const STORAGE_KEY = "openlms.language";

function isLanguage(value: string | null): value is Language {
  return value !== null && Object.hasOwn(LANGUAGES, value);
}

function initialLanguage(): Language {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (isLanguage(saved)) return saved;
  for (const tag of navigator.languages ?? []) {
    const base = tag.toLowerCase().split("-")[0];
    if (isLanguage(base)) return base;
  }
  return "en";
}

const current = $state({ language: initialLanguage() });

export function language(): Language {
  return current.language;
}

export function setLanguage(next: Language): void {
  current.language = next;
  localStorage.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
}

/** The text of `key` in the current language; `{name}` placeholders filled from `params`. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text: string = LANGUAGES[current.language][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

document.documentElement.lang = current.language;
