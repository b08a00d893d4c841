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

/** The parts of `content` the ranges cover, in order (whitespace-trimmed, empty ones left out). */
function pieces(content: string, ranges: Ranges): string[] {
  return ranges.map(([s, e]) => content.slice(s, e).trim()).filter((p) => p.length > 0);
}

/** Where the pieces are in `full` (the rendered text), searched in order; markdown syntax the renderer
 * removed can make a piece unfindable, and it is then left unmarked. */
function spans(full: string, parts: string[]): Ranges {
  const found: Ranges = [];
  let cursor = 0;
  for (const part of parts) {
    const at = full.indexOf(part, cursor);
    if (at < 0) continue;
    found.push([at, at + part.length]);
    cursor = at + part.length;
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
