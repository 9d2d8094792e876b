// Accounts: one page of the book at a time, sorted, filtered and paged by the server (fast on
// 100,000 accounts); the rows on screen are watched on the stream and update live.
import {
  STATUS,
  STATUS_NAMES,
  api,
  clear,
  errorBox,
  field,
  flash,
  h,
  isAbort,
  num,
  numCell,
  pct,
  ratio,
  select,
  sigma,
  statusBadge,
  throttle,
  times,
  usd,
} from './lib.js';

const COLUMNS = [
  { key: 'account_id', label: 'Account', sort: 'account_id' },
  { key: 'owner', label: 'Owner' },
  { key: 'mode', label: 'Mode' },
  { key: 'status', label: 'Status', sort: 'status', first: 'desc' },
  { key: 'health_ratio', label: 'Health ratio', sort: 'health_ratio', num: true, fmt: (r) => ratio(r.health_ratio) },
  { key: 'maint_health_usd', label: 'Maint health', sort: 'maint_health_usd', num: true, fmt: (r) => usd(r.maint_health_usd) },
  { key: 'init_health_usd', label: 'Init health', sort: 'init_health_usd', num: true, fmt: (r) => usd(r.init_health_usd) },
  { key: 'equity_usd', label: 'Equity', sort: 'equity_usd', num: true, first: 'desc', fmt: (r) => usd(r.equity_usd) },
  { key: 'leverage', label: 'Leverage', sort: 'leverage', num: true, first: 'desc', fmt: (r) => times(r.leverage) },
  {
    key: 'distance_to_liquidation_frac',
    label: 'To liquidation',
    sort: 'distance_to_liquidation_frac',
    num: true,
    title: 'Smallest move of one asset price that brings maintenance health to zero (linear estimate)',
    fmt: (r) => (r.distance_to_liquidation_frac === null || r.distance_to_liquidation_frac === undefined
      ? '\u2014'
      : `${pct(r.distance_to_liquidation_frac)}${r.distance_asset ? ` ${r.distance_asset}` : ''}`),
  },
  {
    key: 'distance_vol_units',
    label: 'In daily \u03c3',
    num: true,
    title: 'The same distance in units of that asset\u2019s daily volatility',
    fmt: (r) => sigma(r.distance_vol_units),
  },
];
const LIVE_KEYS = ['status', 'health_ratio', 'maint_health_usd', 'init_health_usd', 'equity_usd'];
const PAGE_SIZES = [25, 50, 100, 200];

export function render(ctx) {
  const { main, signal, params } = ctx;
  ctx.title('Accounts');
  const pool = ctx.who.role === 'admin' || ctx.who.role === 'auditor';
  const q = {
    status: STATUS_NAMES.includes(params.get('status')) ? params.get('status') : '',
    q: (params.get('q') || '').slice(0, 128),
    sort: COLUMNS.some((c) => c.sort === params.get('sort')) ? params.get('sort') : 'maint_health_usd',
    desc: params.get('desc') === '1',
    offset: Math.max(0, parseInt(params.get('offset') || '0', 10) || 0),
    limit: PAGE_SIZES.includes(parseInt(params.get('limit'), 10)) ? parseInt(params.get('limit'), 10) : 50,
  };

  const search = h('input', { type: 'search', name: 'q', value: q.q, autocomplete: 'off', maxlength: 128, placeholder: 'e.g. eth' });
  const statusSelect = select([['', 'all statuses'], ...STATUS_NAMES.map((s) => [s, STATUS[s][1]])], q.status, { name: 'status' });
  const sizeSelect = select(PAGE_SIZES.map((n) => [String(n), String(n)]), String(q.limit), { name: 'limit' });
  const form = h(
    'form',
    { class: 'bar', role: 'search', 'aria-label': 'Filter accounts' },
    field('Account id contains', search),
    field('Status', statusSelect),
    field('Rows per page', sizeSelect),
    h('button', { type: 'submit', class: 'btn', text: 'Filter' }),
  );
  const summary = h('p', { class: 'sub', id: 'accounts-summary', 'aria-live': 'polite' });
  const countsLine = h('p', { class: 'row small', id: 'accounts-counts' });
  const headRow = h('tr');
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const problem = h('div');
  const table = h('table', { id: 'accounts-table' },
    h('caption', { text: 'Live figures in USD. Sorted, filtered and paged on the server; select a column title to sort.' }),
    h('thead', {}, headRow),
    body);

  main.append(
    h('h1', { text: 'Accounts' }),
    summary,
    h('section', { class: 'panel', 'aria-label': 'Accounts table' }, form, countsLine, problem, h('div', { class: 'tablewrap' }, table), pager),
  );

  function hash() {
    const p = new URLSearchParams();
    if (q.status) p.set('status', q.status);
    if (q.q) p.set('q', q.q);
    if (q.sort !== 'maint_health_usd') p.set('sort', q.sort);
    if (q.desc) p.set('desc', '1');
    if (q.offset) p.set('offset', String(q.offset));
    if (q.limit !== 50) p.set('limit', String(q.limit));
    const text = p.toString();
    return `#/accounts${text ? `?${text}` : ''}`;
  }

  function drawHead() {
    const focused = headRow.contains(document.activeElement) ? document.activeElement.dataset.sort : null;
    clear(
      headRow,
      COLUMNS.map((c) => {
        const active = c.sort && c.sort === q.sort;
        const th = h('th', { scope: 'col', class: c.num ? 'num' : '', title: c.title });
        if (active) th.setAttribute('aria-sort', q.desc ? 'descending' : 'ascending');
        if (!c.sort) {
          th.textContent = c.label;
          return th;
        }
        const arrow = active ? (q.desc ? '\u25bc' : '\u25b2') : '\u21c5';
        th.append(
          h(
            'button',
            {
              type: 'button',
              class: 'sort',
              'data-sort': c.sort,
              onclick: () => {
                if (q.sort === c.sort) q.desc = !q.desc;
                else {
                  q.sort = c.sort;
                  q.desc = c.first === 'desc';
                }
                q.offset = 0;
                go();
              },
            },
            c.label,
            h('span', { class: 'arrow', 'aria-hidden': 'true', text: arrow }),
            h('span', { class: 'visually-hidden', text: active ? '' : ', sortable' }),
          ),
        );
        return th;
      }),
    );
    if (focused) headRow.querySelector(`[data-sort="${focused}"]`)?.focus(); // keyboard users stay put
  }

  function cell(column, row) {
    if (column.key === 'account_id') {
      return h('th', { scope: 'row', 'data-k': 'account_id' },
        h('a', { href: `#/account/${encodeURIComponent(row.account_id)}`, text: row.account_id }));
    }
    if (column.key === 'status') return h('td', { 'data-k': 'status' }, statusBadge(row.status));
    if (!column.num) return h('td', { 'data-k': column.key, text: row[column.key] ?? '\u2014' });
    const td = numCell(row[column.key], column.fmt(row));
    td.dataset.k = column.key;
    return td;
  }

  function drawRows(rows) {
    clear(
      body,
      rows.length
        ? rows.map((row) => h('tr', { 'data-account': row.account_id }, COLUMNS.map((c) => cell(c, row))))
        : h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'muted', text: 'No account matches.' })),
    );
  }

  function drawPager(total) {
    const pages = Math.max(1, Math.ceil(total / q.limit));
    const page = Math.floor(q.offset / q.limit) + 1;
    const jump = (offset) => () => {
      q.offset = Math.max(0, offset);
      go();
    };
    const focused = pager.contains(document.activeElement) ? document.activeElement.dataset.nav : null;
    const button = (nav, text, disabled, offset) => h('button', {
      type: 'button', class: 'btn btn-quiet btn-small', 'data-nav': nav, disabled, onclick: jump(offset), text,
    });
    clear(
      pager,
      button('first', '\u00ab First', page <= 1, 0),
      button('previous', '\u2039 Previous', page <= 1, q.offset - q.limit),
      h('span', { text: `Page ${num(page)} of ${num(pages)}` }),
      button('next', 'Next \u203a', page >= pages, q.offset + q.limit),
      button('last', 'Last \u00bb', page >= pages, (pages - 1) * q.limit),
    );
    if (focused) {
      const again = pager.querySelector(`[data-nav="${focused}"]`);
      (again && !again.disabled ? again : pager.querySelector('button:not([disabled])'))?.focus();
    }
  }

  let watching = [];
  let loading = null;
  let pushes = 0; // live row updates seen: a page fetched before the last one is older
  const latest = new Map(); // account id -> {n, data}: the last pushed figures
  async function load() {
    const version = pushes;
    const p = new URLSearchParams({ sort: q.sort, descending: String(q.desc), offset: String(q.offset), limit: String(q.limit) });
    if (q.status) p.set('status', q.status);
    if (q.q) p.set('q', q.q);
    const filter = q.q ? `&q=${encodeURIComponent(q.q)}` : '';
    const ticket = {};
    loading = ticket;
    table.setAttribute('aria-busy', 'true');
    try {
      // status counts: one cheap /v1/system read for the pool; per status (with the filter) else
      const counts = pool && !q.q
        ? api('/v1/system', { signal }).then((sys) => STATUS_NAMES.map((s) => sys.status_counts[s] ?? 0))
        : Promise.all(STATUS_NAMES.map((s) => api(`/v1/accounts?status=${s}&limit=1${filter}`, { signal })))
          .then((all) => all.map((t) => t.total));
      const [page, totals] = await Promise.all([api(`/v1/accounts?${p}`, { signal }), counts]);
      if (loading !== ticket) return;
      clear(problem);
      if (page.total > 0 && q.offset >= page.total) {
        q.offset = Math.floor((page.total - 1) / q.limit) * q.limit;
        go();
        return;
      }
      drawHead();
      drawRows(page.accounts);
      for (const [id, pushed] of latest) {
        if (pushed.n > version) applyPush(id, pushed.data, false); // newer than this page
      }
      drawPager(page.total);
      drawCounts(totals);
      const first = page.total ? q.offset + 1 : 0;
      const last = q.offset + page.accounts.length;
      summary.textContent = `Showing ${num(first)}\u2013${num(last)} of ${num(page.total)} account${page.total === 1 ? '' : 's'}${q.status ? ` with status \u201c${STATUS[q.status][1]}\u201d` : ''}${q.q ? ` whose id contains \u201c${q.q}\u201d` : ''}.`;
      const ids = page.accounts.map((a) => `account:${a.account_id}`).sort();
      if (ids.join() !== watching.join()) {
        watching = ids;
        ctx.live.want(pool ? ['system', ...ids] : ids);
      }
    } catch (err) {
      if (!isAbort(err)) clear(problem, errorBox(err, 'could not load the accounts'));
    } finally {
      if (loading === ticket) table.removeAttribute('aria-busy');
    }
  }

  function drawCounts(totals) {
    const link = (status) => {
      const p = new URLSearchParams();
      if (q.q) p.set('q', q.q);
      if (status) p.set('status', status);
      const text = p.toString();
      return `#/accounts${text ? `?${text}` : ''}`;
    };
    const all = totals.reduce((a, b) => a + b, 0);
    clear(
      countsLine,
      h('span', { class: 'muted', text: 'By status:' }),
      h('a', { href: link(''), 'aria-current': q.status ? null : 'true', text: `all ${num(all)}` }),
      STATUS_NAMES.map((s, k) => h('a', { href: link(s), 'data-status': s, 'data-n': totals[k], 'aria-current': q.status === s ? 'true' : null },
        statusBadge(s), ` ${num(totals[k])}`)),
    );
  }

  function go() {
    history.replaceState(null, '', hash());
    drawHead(); // the new order shows at once; the rows follow
    load();
  }

  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      q.q = search.value.trim();
      q.offset = 0;
      go();
    }, 300);
  });
  ctx.onCleanup(() => clearTimeout(typing));
  statusSelect.addEventListener('change', () => {
    q.status = statusSelect.value;
    q.offset = 0;
    go();
  });
  sizeSelect.addEventListener('change', () => {
    q.limit = parseInt(sizeSelect.value, 10);
    q.offset = 0;
    go();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(typing);
    q.q = search.value.trim();
    q.status = statusSelect.value;
    q.limit = parseInt(sizeSelect.value, 10);
    q.offset = 0;
    go();
  });

  function applyPush(id, data, highlight) {
    const tr = body.querySelector(`tr[data-account="${CSS.escape(id)}"]`);
    if (!tr) return;
    for (const key of LIVE_KEYS) {
      const td = tr.querySelector(`[data-k="${key}"]`);
      const column = COLUMNS.find((c) => c.key === key);
      if (!td || !column) continue;
      const fresh = cell(column, data);
      if (fresh.textContent !== td.textContent) {
        td.replaceWith(fresh);
        if (highlight && key === 'status') flash(fresh); // a new status stands out, numbers just move
      }
    }
  }

  const refresh = throttle(load, 3000); // the rows on screen move at once; re-sorting can wait
  ctx.onCleanup(() => refresh.cancel());
  ctx.listen((m) => {
    if (m.channel === 'account' && m.data) {
      pushes += 1;
      latest.set(m.account_id, { n: pushes, data: m.data });
      if (latest.size > 1000) latest.delete(latest.keys().next().value);
      applyPush(m.account_id, m.data, true);
      refresh();
    } else if (m.channel === 'system') {
      refresh();
    }
  });

  drawHead();
  load();
}

export const roles = null;
