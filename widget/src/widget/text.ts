// Safe rendering of user text: everything becomes text nodes, and only http(s) URLs become
// links, built with DOM APIs. No user data ever reaches innerHTML.

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
// Punctuation that ends a sentence rather than the URL ("see https://x.org.").
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** Appends `text` to `parent` as text nodes and <a> elements for http(s) URLs. */
export function appendRichText(parent: Node, text: string): void {
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0];
    const trail = TRAILING.exec(raw);
    // Keep a closing paren that has its opening one inside the URL (wikipedia links).
    if (trail && !(trail[0] === ')' && raw.includes('('))) raw = raw.slice(0, -trail[0].length);
    const start = m.index ?? 0;
    const link = safeLink(raw);
    if (!link) continue;
    if (start > last) parent.appendChild(document.createTextNode(text.slice(last, start)));
    parent.appendChild(link);
    last = start + raw.length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/** An <a> for an http(s) URL, or null when the text does not parse as one. */
export function safeLink(raw: string): HTMLAnchorElement | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const a = document.createElement('a');
  a.href = url.href;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  a.textContent = raw;
  return a;
}
