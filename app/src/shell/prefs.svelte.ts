// Theme (Light / Dark / Auto, following prefers-color-scheme) and UI mode (User / Power User /
// Developer), persisted in localStorage. Views read `prefs.mode` to show or hide what each mode has.
export const THEMES = ["light", "dark", "auto"] as const;
export type Theme = (typeof THEMES)[number];
export const MODES = ["user", "power", "developer"] as const;
export type Mode = (typeof MODES)[number];

const THEME_KEY = "openlms.theme";
const MODE_KEY = "openlms.mode";

function saved<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  const value = localStorage.getItem(key);
  return allowed.find((item) => item === value) ?? fallback;
}

export const prefs = $state({
  theme: saved<Theme>(THEME_KEY, THEMES, "auto"),
  mode: saved<Mode>(MODE_KEY, MODES, "user"),
});

const dark = window.matchMedia("(prefers-color-scheme: dark)");

/** The theme in effect: "auto" follows the system's setting. */
export function effectiveTheme(theme: Theme = prefs.theme): "light" | "dark" {
  if (theme !== "auto") return theme;
  return dark.matches ? "dark" : "light";
}

function applyTheme(): void {
  const root = document.documentElement;
  root.dataset.theme = effectiveTheme();
  root.dataset.themeSetting = prefs.theme;
}

export function setTheme(theme: Theme): void {
  prefs.theme = theme;
  localStorage.setItem(THEME_KEY, theme);
  applyTheme();
}

export function setMode(mode: Mode): void {
  prefs.mode = mode;
  localStorage.setItem(MODE_KEY, mode);
  document.documentElement.dataset.mode = mode;
}

/** True when the current mode shows what `least` shows (user < power < developer). */
export function modeAtLeast(least: Mode): boolean {
  return MODES.indexOf(prefs.mode) >= MODES.indexOf(least);
}

export function startPrefs(): void {
  applyTheme();
  document.documentElement.dataset.mode = prefs.mode;
  dark.addEventListener("change", applyTheme);
}
