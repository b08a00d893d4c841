// The app's one way to show text: t("key"), reactive on the chosen language.
// Every key lives in every language file (tests/unit/webapp/test_i18n_keys.py checks it).
import de from "./de.json";
import en from "./en.json";
import es from "./es.json";
import zh from "./zh.json";

export type Messages = typeof en;
export type MessageKey = keyof Messages;
export const LANGUAGES = { en, es, de, zh } as const;
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
