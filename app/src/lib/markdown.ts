// Markdown to safe HTML: marked parses, highlight.js colours code, DOMPurify removes anything unsafe
// (a model's answer is untrusted text). Code blocks carry a copy button, handled by `copyCodeOnClick`.
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import { Marked, type Tokens } from 'marked';

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function highlighted(text: string, lang: string | undefined): string {
  const language = lang?.trim().split(/\s+/)[0];
  if (language && hljs.getLanguage(language)) {
    return hljs.highlight(text, { language, ignoreIllegals: true }).value;
  }
  return escapeHtml(text);
}

/** A renderer whose code blocks have a copy button labelled `copyLabel`. */
export function makeMarked(copyLabel: string): Marked {
  return new Marked({
    gfm: true,
    breaks: true,
    renderer: {
      // an image would be a request the model chose (e.g. `![x](/api/...)`): shown as its alt text instead
      image(token: Tokens.Image): string {
        return `<span class="md-image">[${escapeHtml(token.text || token.href)}]</span>`;
      },
      code(token: Tokens.Code): string {
        const lang = token.lang ? escapeHtml(token.lang) : '';
        return (
          `<div class="code-block"><div class="code-head"><span class="code-lang">${lang}</span>` +
          `<button type="button" class="copy-code" data-testid="copy-code">${escapeHtml(copyLabel)}</button></div>` +
          `<pre><code class="hljs">${highlighted(token.text, token.lang)}</code></pre></div>`
        );
      },
    },
  });
}

/** Sanitised HTML for `markdown`; links open in a new tab without access to this page. */
export function renderMarkdown(marked: Marked, markdown: string): string {
  const html = marked.parse(markdown, { async: false });
  const clean = DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true }, // no SVG or MathML (an SVG <image> loads its href)
    ADD_ATTR: ['target'],
    // nothing in an answer may make the browser fetch anything: no media, no styles with url(...)
    FORBID_TAGS: ['img', 'picture', 'source', 'video', 'audio', 'track', 'input', 'object', 'embed'],
    FORBID_ATTR: ['style', 'srcset', 'src', 'poster', 'background', 'action', 'formaction'],
  });
  return clean.replace(/<a /g, '<a target="_blank" rel="noopener noreferrer" ');
}

/** A click handler for a rendered message: a code block's copy button copies its code. */
export function copyCodeOnClick(event: MouseEvent, copiedLabel: string): void {
  const button = (event.target as HTMLElement | null)?.closest('button.copy-code');
  if (!(button instanceof HTMLButtonElement)) return;
  const code = button.closest('.code-block')?.querySelector('code')?.textContent ?? '';
  void navigator.clipboard?.writeText(code).then(() => {
    const label = button.textContent;
    button.textContent = copiedLabel;
    setTimeout(() => (button.textContent = label), 1500);
  });
}
