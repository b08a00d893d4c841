// Numbers as the Models page shows them.

/** 98362432 -> "93.8 MiB" (binary units, as the server's memory figures are). */
export function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size >= 100 || unit === 0 ? Math.round(size) : size.toFixed(1)} ${units[unit]}`;
}

/** The context lengths offered in the load dialog: powers of two up to the model's maximum, and it. */
export function contextSteps(max: number): number[] {
  const steps: number[] = [];
  for (let n = 512; n < max; n *= 2) steps.push(n);
  steps.push(max);
  return steps;
}

export const CACHE_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'] as const;
