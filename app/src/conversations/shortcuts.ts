// LM Studio's chat shortcuts, written with the platform's keys: ⌘ on macOS, Ctrl elsewhere.
export function isMac(): boolean {
  const data = (navigator as Navigator & { userAgentData?: { platform?: string } }).userAgentData;
  return /mac/i.test(data?.platform ?? "") || /mac/i.test(navigator.platform ?? "");
}

/** "Ctrl+Shift+N" or "⇧⌘N" for `key` with Ctrl/⌘ (and Shift). */
export function shortcutLabel(key: string, shift = false, mac = isMac()): string {
  if (mac) return `${shift ? "⇧" : ""}⌘${key.toUpperCase()}`;
  return `Ctrl+${shift ? "Shift+" : ""}${key.toUpperCase()}`;
}

/** The aria-keyshortcuts value of the same shortcut. */
export function ariaShortcut(key: string, shift = false, mac = isMac()): string {
  return `${mac ? "Meta" : "Control"}+${shift ? "Shift+" : ""}${key.toUpperCase()}`;
}

/** True for Ctrl/⌘ + Shift + `key`. */
export function isShiftShortcut(event: KeyboardEvent, key: string): boolean {
  return (event.ctrlKey || event.metaKey) && event.shiftKey && !event.altKey && event.key.toLowerCase() === key;
}
