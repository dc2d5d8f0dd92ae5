type Attributes = Record<string, string | number | boolean | undefined>;

/** Creates an element; text children are escaped by construction (never innerHTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Array<Node | string | undefined>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== undefined) element.append(child);
  return element;
}

export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing from index.html, or is not a ${type.name}`);
  return element;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const first = (word: string | undefined) => (word ? (Array.from(word)[0] ?? '') : '');
  const letters = parts.length > 1 ? `${first(parts[0])}${first(parts.at(-1))}` : first(parts[0]);
  return letters.toUpperCase() || '?';
}

/** A stable, pleasant hue per person, so avatars are easy to tell apart. */
export function hueFor(text: string): number {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % 360;
}

export function clockTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
}

/** Appends to a log and keeps the newest entry in view unless the reader scrolled up. */
export function appendToLog(log: HTMLElement, item: HTMLElement, limit = 200): void {
  const pinned = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  while (log.childElementCount > limit) log.firstElementChild?.remove();
  if (pinned) log.scrollTop = log.scrollHeight;
}
