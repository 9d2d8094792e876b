// Shared helpers of the risk desk: DOM building, number formatting, the API client, the live
// stream. Every string from the server goes into the page as text (textContent), never as HTML.

// ---- DOM --------------------------------------------------------------------------------------
export function h(tag, attrs, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.setAttribute('class', value);
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'value' && 'value' in node && !tag.startsWith('svg:')) node.value = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

// A labelled form control: <div class="field"><label for=id>text</label><control id=id></div>
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId('f');
  const parts = [h('label', { for: control.id, text: labelText }), control];
  if (hint) {
    const hintId = nextId('hint');
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('span', { class: 'hint', id: hintId, text: hint }));
  }
  return h('div', { class: 'field' }, parts);
}

export function select(options, value, attrs = {}) {
  return h(
    'select',
    attrs,
    options.map(([v, label]) => h('option', { value: v, text: label, selected: v === value })),
  );
}

export function flash(node) {
  if (!node) return;
  node.classList.remove('flash');
  void node.offsetWidth; // restart the animation
  node.classList.add('flash');
}

// ---- numbers for people -----------------------------------------------------------------------
const MINUS = '\u2212';
const DASH = '\u2014';
const formatters = new Map();

function nf(digits) {
  let f = formatters.get(digits);
  if (!f) {
    f = new Intl.NumberFormat('en-US', {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    formatters.set(digits, f);
  }
  return f;
}

export const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

export function num(x, digits = 0) {
  if (!isNum(x)) return DASH;
  const text = nf(digits).format(x);
  // a value that rounds to zero is shown as 0, never as -0
  return /[1-9]/.test(text) ? text.replace('-', MINUS) : text.replace('-', '');
}

// USD amounts: no cents from 1,000 (and for zero), cents from 1, 4 decimals below.
export function usdDigits(x) {
  const a = Math.abs(x);
  return a >= 1000 || a === 0 ? 0 : a >= 1 ? 2 : 4;
}
export function usd(x, digits) {
  if (!isNum(x)) return DASH;
  return `${num(x, digits ?? usdDigits(x))} USD`;
}
// Prices: cents from 10 USD, 4 decimals below (stablecoins).
export function price(x) {
  if (!isNum(x)) return DASH;
  return `${num(x, Math.abs(x) >= 10 ? 2 : 4)} USD`;
}
export function qty(x) {
  if (!isNum(x)) return DASH;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 2 : a >= 1 ? 4 : 6;
  const text = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits }).format(x);
  return /[1-9]/.test(text) ? text.replace('-', MINUS) : text.replace('-', '');
}
export function pct(frac, digits = 1, signed = false) {
  if (!isNum(frac)) return DASH;
  const text = num(frac * 100, digits);
  return `${signed && frac > 0 ? '+' : ''}${text} %`;
}
export function ratio(x, digits = 3) {
  return isNum(x) ? num(x, digits) : DASH;
}
export function times(x) {
  return isNum(x) ? `${num(x, 2)}\u00d7` : DASH;
}
// Volatility units: beyond 100 daily sigmas the number says nothing more than "far".
export function sigma(x) {
  if (!isNum(x)) return DASH;
  return x > 100 ? '> 100 \u03c3' : `${num(x, 1)} \u03c3`;
}
// Compact USD for dense grids: 12.3k, 1.25M.
export function kusd(x) {
  if (!isNum(x)) return DASH;
  const a = Math.abs(x);
  if (a >= 1e9) return `${num(x / 1e9, 2)}B`;
  if (a >= 1e6) return `${num(x / 1e6, 2)}M`;
  if (a >= 1e3) return `${num(x / 1e3, a >= 1e5 ? 0 : 1)}k`;
  return num(x, 0);
}
export function clock(epochS) {
  if (!isNum(epochS)) return DASH;
  return new Date(epochS * 1000).toLocaleTimeString('en-GB', { hour12: false });
}
export function stamp(epochS) {
  if (!isNum(epochS)) return DASH;
  const d = new Date(epochS * 1000);
  return `${d.toISOString().slice(0, 10)} ${d.toLocaleTimeString('en-GB', { hour12: false })}`;
}
export function signClass(x) {
  return isNum(x) && x < 0 ? 'neg' : '';
}

// A number cell: the formatted text, the raw value in data-v (for tests and copy/paste).
export function numCell(value, formatted, extraClass = '') {
  const attrs = { class: `num ${signClass(value)} ${extraClass}`.trim() };
  if (isNum(value)) attrs['data-v'] = String(value);
  return h('td', attrs, formatted);
}

// ---- statuses: an icon and a word, never colour alone ------------------------------------------
export const STATUS = {
  healthy: ['\u25cf', 'healthy'],
  margin_call: ['\u25b2', 'margin call'],
  liquidatable: ['\u2716', 'liquidatable'],
  bankrupt: ['\u2620', 'bankrupt'],
};
export const ORACLE = {
  healthy: ['\u25cf', 'healthy'],
  degraded: ['\u25b2', 'degraded'],
  halted: ['\u25a0', 'halted'],
};
export function statusBadge(status, big = false) {
  const [icon, label] = STATUS[status] || ORACLE[status] || ['?', String(status)];
  return h(
    'span',
    { class: `status status-${status}${big ? ' status-big' : ''}`, 'data-status': status },
    h('span', { 'aria-hidden': 'true', text: icon }),
    ` ${label}`,
  );
}
export const STATUS_NAMES = ['healthy', 'margin_call', 'liquidatable', 'bankrupt'];

// ---- session and API ---------------------------------------------------------------------------
export const session = {
  get key() {
    return sessionStorage.getItem('cm.key');
  },
  get who() {
    try {
      return JSON.parse(sessionStorage.getItem('cm.who') || 'null');
    } catch {
      return null;
    }
  },
  set(key, who) {
    sessionStorage.setItem('cm.key', key);
    sessionStorage.setItem('cm.who', JSON.stringify(who));
  },
  clear() {
    sessionStorage.removeItem('cm.key');
    sessionStorage.removeItem('cm.who');
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// A fresh random idempotency key per click (crypto.getRandomValues works without https too).
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `ui-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

let unauthorized = () => {};
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export async function api(path, { method = 'GET', body, key, idempotent = false, signal } = {}) {
  const headers = { 'X-API-Key': key ?? session.key ?? '' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (idempotent) headers['Idempotency-Key'] = idempotencyKey();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { error: `network: the server did not answer (${err.message})` });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401 && key === undefined) unauthorized(data);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function errorBox(err, title) {
  const message = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  return h(
    'div',
    { class: 'alert', role: 'alert' },
    title ? h('strong', { text: `${title}: ` }) : null,
    h('span', { class: 'error-text', text: message }),
  );
}

export const isAbort = (err) => err && err.name === 'AbortError';

// Run fn at most once per `ms`, the last call winning (trailing edge).
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  const wrapped = () => {
    const wait = Math.max(0, last + ms - Date.now());
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
  wrapped.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return wrapped;
}

// ---- the live stream ---------------------------------------------------------------------------
// One WebSocket; each page says which channels it wants. A changed set reconnects (the server
// cannot unsubscribe), an identical set keeps the socket. Reconnects with backoff.
export class Live {
  constructor(onState) {
    this.onState = onState;
    this.handlers = new Set();
    this.channels = [];
    this.ws = null;
    this.retryMs = 500;
    this.timer = null;
    this.stopped = true;
  }

  want(channels) {
    const next = [...new Set(channels)].sort();
    const same = next.length === this.channels.length && next.every((c, i) => c === this.channels[i]);
    this.channels = next;
    this.stopped = false;
    if (same && this.ws && this.ws.readyState <= 1) return;
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      this.ws.close();
      this.ws = null;
    }
    if (this.stopped || !session.key) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/v1/stream?key=${encodeURIComponent(session.key)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.onState('wait');
    ws.onopen = () => {
      this.retryMs = 500;
      ws.send(JSON.stringify({ subscribe: this.channels }));
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.channel === 'subscribed') this.onState('live');
      for (const handler of [...this.handlers]) {
        try {
          handler(message);
        } catch (err) {
          console.error('live handler', err);
        }
      }
    };
    ws.onclose = (event) => {
      this.ws = null;
      if (this.stopped) return;
      this.onState(event.code === 4401 ? 'off' : 'wait');
      if (event.code === 4401) return;
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    };
  }

  on(handler) {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  stop() {
    this.stopped = true;
    this.channels = [];
    this.connect();
    this.onState('off');
  }
}

// Cached reference data (markets, assets) for forms.
const cache = new Map();
export function cached(path, maxAgeMs = 30000) {
  const hit = cache.get(path);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.promise;
  const promise = api(path).catch((err) => {
    cache.delete(path);
    throw err;
  });
  cache.set(path, { at: Date.now(), promise });
  return promise;
}
export function dropCache() {
  cache.clear();
}
