// Accepted draft tokens (speculative decoding): where they are in an answer's text, and the answer's
// rendered HTML with them marked (<mark class="drafted">), as LM Studio colours them.

export type Ranges = [number, number][];

/** Record that `text`, about to be appended to `content`, holds accepted draft tokens. */
export function addDrafted(ranges: Ranges | undefined, content: string, text: string): Ranges {
  const next = (ranges ?? []).slice();
  const start = content.length;
  const last = next.at(-1);
  if (last && last[1] === start) next[next.length - 1] = [last[0], start + text.length];
  else next.push([start, start + text.length]);
  return next;
}

interface Piece {
  text: string;
  /** How far (in the raw text) it is from the end of the piece before it. */
  gap: number;
}

/** The parts of `content` the ranges cover, in order (whitespace-trimmed, empty ones left out). */
function pieces(content: string, ranges: Ranges): Piece[] {
  let end = 0;
  const out: Piece[] = [];
  for (const [s, e] of ranges) {
    const text = content.slice(s, e).trim();
    if (text) out.push({ text, gap: s - end });
    end = e;
  }
  return out;
}

/** Where the pieces are in `full` (the rendered text), searched in order. A piece the renderer changed
 * (markdown syntax removed: `**`, a list's `1.`) is looked for word by word; words it removed are left
 * unmarked. */
function spans(full: string, parts: Piece[]): Ranges {
  const found: Ranges = [];
  let cursor = 0;
  const find = (text: string, within = Infinity): boolean => {
    const at = full.indexOf(text, cursor);
    if (at < 0 || at - cursor > within) return false;
    found.push([at, at + text.length]);
    cursor = at + text.length;
    return true;
  };
  // a piece is only looked for about where it should be, so that a common word never jumps ahead
  for (const { text, gap } of parts) {
    const within = 2 * gap + 16;
    if (find(text, within)) continue;
    for (const word of text.split(/\s+/)) {
      const bare = word.replace(/[*_`#>~[\]]/g, "").replace(/^\d+\.$/, ""); // markdown the renderer drops
      if (bare) find(bare, within + text.length);
    }
  }
  return found;
}

/** `html` (sanitised markdown) with the accepted draft tokens wrapped in <mark class="drafted">. */
export function markDrafted(html: string, content: string, ranges: Ranges | undefined): string {
  if (!ranges?.length || !html) return html;
  const root = document.createElement("template");
  root.innerHTML = html;
  const walker = document.createTreeWalker(root.content, NodeFilter.SHOW_TEXT);
  const nodes: Text[] = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node as Text);
  const full = nodes.map((n) => n.data).join("");
  const marks = spans(full, pieces(content, ranges));
  let offset = 0;
  for (const node of nodes) {
    const start = offset;
    offset += node.data.length;
    const inside = marks.filter(([s, e]) => s < offset && e > start);
    if (inside.length) wrap(node, start, inside);
  }
  return root.innerHTML;
}

function wrap(node: Text, start: number, marks: Ranges): void {
  const text = node.data;
  const out = document.createDocumentFragment();
  let at = 0;
  for (const [s, e] of marks) {
    const from = Math.max(0, s - start);
    const to = Math.min(text.length, e - start);
    if (from > at) out.append(text.slice(at, from));
    const mark = document.createElement("mark");
    mark.className = "drafted";
    mark.textContent = text.slice(from, to);
    out.append(mark);
    at = to;
  }
  if (at < text.length) out.append(text.slice(at));
  node.replaceWith(out);
}
