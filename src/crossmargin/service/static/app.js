// The risk desk: login, hash routes, the shared live stream. Pages live in their own modules.
import { $, ApiError, Live, api, clear, dropCache, errorBox, field, h, onUnauthorized, session } from './lib.js';
import * as overview from './overview.js';
import * as accounts from './accounts.js';
import * as account from './account.js';
import * as risk from './risk.js';
import * as admin from './admin.js';

const ROUTES = { overview, accounts, account, risk, admin };
const CONN = {
  live: ['conn-live', '\u25cf', 'live'],
  wait: ['conn-wait', '\u25d0', 'connecting\u2026'],
  off: ['conn-off', '\u25cb', 'offline'],
};

const live = new Live(setConnection);
let current = null; // {controller, cleanups}
let rendered = false;

function setConnection(state) {
  const [cls, icon, text] = CONN[state] || CONN.off;
  const node = $('#conn');
  node.className = `conn ${cls}`;
  node.dataset.state = state;
  clear(node, h('span', { 'aria-hidden': 'true', text: icon }), ` ${text}`);
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { name: parts[0] || '', args: parts.slice(1), params: new URLSearchParams(query) };
}

function teardown() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups.splice(0)) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
  current = null;
}

function showChrome(who) {
  $('#nav').hidden = !who;
  $('#session').hidden = !who;
  if (!who) return;
  for (const li of document.querySelectorAll('#nav li[data-roles]')) {
    li.hidden = !li.dataset.roles.split(' ').includes(who.role);
  }
  const owner = who.owner ? ` of ${who.owner}` : '';
  clear($('#who'), h('span', { class: 'visually-hidden', text: 'Signed in as ' }), `${who.name} \u00b7 ${who.role}${owner}`);
}

function showLogin(message) {
  teardown();
  live.stop();
  showChrome(null);
  document.title = 'Sign in \u00b7 crossmargin risk desk';
  const input = h('input', {
    type: 'password',
    name: 'key',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    id: 'login-key',
  });
  const status = h('div', { id: 'login-error', 'aria-live': 'assertive' });
  if (message) status.append(errorBox(message));
  const button = h('button', { type: 'submit', class: 'btn', text: 'Sign in' });
  const form = h(
    'form',
    { class: 'panel login', id: 'login' },
    h('h1', { text: 'Sign in to the risk desk' }),
    h('p', {
      class: 'muted',
      text:
        'Your API key stays in this browser tab (session storage) and is sent as X-API-Key. ' +
        'Owners see their own accounts; auditors see everything and change nothing; risk ' +
        'admins may also change risk parameters.',
    }),
    field('API key', input, 'Create one with \u201ccrossmargin keys create\u201d; serve --demo prints demo keys.'),
    button,
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    button.disabled = true;
    clear(status);
    try {
      const who = await api('/v1/whoami', { key });
      session.set(key, who);
      dropCache();
      if (!location.hash || location.hash === '#/' || location.hash === '#') {
        location.hash = '#/overview';
      }
      render();
    } catch (err) {
      status.append(errorBox(err instanceof ApiError && err.status === 401 ? 'That key was refused (unknown or revoked).' : err));
      button.disabled = false;
      input.focus();
    }
  });
  clear($('#main'), form);
  input.focus();
}

function render() {
  teardown();
  const who = session.who;
  if (!session.key || !who) {
    showLogin();
    return;
  }
  showChrome(who);
  const route = parseHash();
  if (!route.name) {
    location.replace('#/overview');
    return;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    const on = a.dataset.route === route.name || (route.name === 'account' && a.dataset.route === 'accounts');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = $('#main');
  const page = ROUTES[route.name];
  const controller = new AbortController();
  current = { controller, cleanups: [] };
  const ctx = {
    who,
    live,
    main,
    args: route.args,
    params: route.params,
    signal: controller.signal,
    onCleanup: (fn) => current && current.cleanups.push(fn),
    title: (text) => {
      document.title = `${text} \u00b7 crossmargin risk desk`;
    },
    every: (ms, fn) => {
      const id = setInterval(fn, ms);
      current.cleanups.push(() => clearInterval(id));
    },
    listen: (handler) => current.cleanups.push(live.on(handler)),
  };
  if (!page) {
    ctx.title('Not found');
    clear(main, h('h1', { text: 'No such page' }), h('p', {}, 'Try the ', h('a', { href: '#/overview', text: 'overview' }), '.'));
  } else if (page.roles && !page.roles.includes(who.role)) {
    ctx.title('Not allowed');
    live.want([]);
    clear(main, h('h1', { text: 'Not available for your role' }), h('p', { class: 'alert', role: 'alert', text: `role: ${who.role} may not see this page` }));
  } else {
    clear(main);
    page.render(ctx);
  }
  if (rendered) main.focus({ preventScroll: true });
  rendered = true;
  window.scrollTo(0, 0);
}

onUnauthorized(() => {
  session.clear();
  showLogin('Your key was refused (revoked or unknown); sign in again.');
});

window.addEventListener('hashchange', render);
// module scripts run once the document is parsed
$('#logout').addEventListener('click', () => {
  session.clear();
  dropCache();
  history.replaceState(null, '', location.pathname);
  showLogin();
});
render();
