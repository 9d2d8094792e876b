// Overview: the pool at a glance (admin, auditor) or the owner's own book, oracle states, the
// accounts nearest liquidation and a live tape of margin calls and liquidations.
import {
  STATUS,
  STATUS_NAMES,
  api,
  clear,
  clock,
  errorBox,
  flash,
  h,
  isAbort,
  isNum,
  num,
  numCell,
  pct,
  price,
  ratio,
  statusBadge,
  throttle,
  usd,
} from './lib.js';
import { cellBar, sparkline } from './charts.js';

const TAPE_MAX = 60;
const TAPE_KINDS = new Set(['margin_call', 'liquidation', 'liquidation_flows', 'params']);

export function render(ctx) {
  const { who, main, signal } = ctx;
  const pool = who.role === 'admin' || who.role === 'auditor';
  ctx.title('Overview');
  const sub = h('p', { class: 'sub', id: 'overview-sub', text: 'Loading\u2026' });
  const kpis = h('dl', { class: 'kpis four', id: 'kpis', 'aria-label': pool ? 'Pool figures' : 'Your accounts' });
  const counts = h('div', { class: 'counts', id: 'status-counts' });
  const countsNote = h('div', { id: 'status-note' });
  const oracleBody = h('tbody');
  const riskBody = h('tbody');
  const oiBody = h('tbody');
  const tape = h('ol', { class: 'tape', id: 'tape', role: 'log', 'aria-label': 'Margin calls and liquidations, newest first' },
    h('li', { class: 'empty', text: 'Reading the journal\u2026' }));
  const history = new Map(); // asset -> recent prices (this session)
  const state = { tape: [], seen: new Set(), system: null };

  const statusPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'h-status' },
    h('h2', { id: 'h-status' }, 'Accounts by status', h('span', { class: 'muted', text: 'select one to list its accounts' })),
    counts,
    countsNote,
  );
  const oraclePanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'h-oracle' },
    h('h2', { id: 'h-oracle' }, 'Oracle', h('span', { class: 'muted', text: 'aggregated prices and their state; trend over this session' })),
    h(
      'div',
      { class: 'tablewrap' },
      h(
        'table',
        { id: 'oracle-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Asset' }),
          h('th', { scope: 'col', text: 'State' }),
          h('th', { scope: 'col', class: 'num', text: 'Price' }),
          h('th', { scope: 'col', class: 'num', text: 'Confidence' }),
          h('th', { scope: 'col', class: 'num', text: 'Stable price' }),
          h('th', { scope: 'col', class: 'num', text: 'Sources' }),
          h('th', { scope: 'col', class: 'num', text: 'Updated' }),
          h('th', { scope: 'col', text: 'Trend' }))),
        oracleBody,
      ),
    ),
  );
  const tapePanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'h-tape' },
    h('h2', { id: 'h-tape' }, 'Live tape', h('span', { class: 'muted', text: 'margin calls, liquidations, fund flows, oracle and parameter changes' })),
    tape,
  );
  const risksPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'h-risks' },
    h('h2', { id: 'h-risks' }, 'Nearest liquidation', h('span', { class: 'muted', text: 'lowest maintenance health first' })),
    h('div', { class: 'tablewrap' }, h('table', { id: 'risk-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', text: 'Account' }),
        h('th', { scope: 'col', text: 'Status' }),
        h('th', { scope: 'col', class: 'num', text: 'Maint health' }),
        h('th', { scope: 'col', class: 'num', text: 'Health ratio' }),
        h('th', { scope: 'col', class: 'num', text: 'Equity' }))),
      riskBody)),
  );
  const oiPanel = pool
    ? h(
      'section',
      { class: 'panel', 'aria-labelledby': 'h-oi' },
      h('h2', { id: 'h-oi' }, 'Open interest', h('span', { class: 'muted', text: 'by market, USD at the mark' })),
      h('div', { class: 'tablewrap' }, h('table', { id: 'oi-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Market' }),
          h('th', { scope: 'col', class: 'num', text: 'Open interest' }),
          h('th', { scope: 'col', class: 'bar-cell' }, h('span', { class: 'visually-hidden', text: 'share' })))),
        oiBody)),
    )
    : h('section', { class: 'panel' }, h('h2', { text: 'Your access' }),
      h('p', { text: `You see the accounts of owner \u201c${who.owner ?? '\u2014'}\u201d only. Pool-wide figures are for risk admins and auditors.` }));

  main.append(
    h('h1', { text: pool ? 'Pool overview' : 'Your accounts' }),
    sub,
    kpis,
    h('div', { class: 'grid2' }, statusPanel, oiPanel),
    h('div', { class: 'grid-wide' }, risksPanel, tapePanel),
    oraclePanel,
  );

  // ---- renderers ----------------------------------------------------------------------------
  function kpi(key, label, value, formatted, note, bad = false) {
    const dd = h('dd', { 'data-v': isNum(value) ? String(value) : '' });
    const parts = formatted.split(' ');
    if (parts.length === 2 && parts[1] === 'USD') dd.append(parts[0], ' ', h('span', { class: 'unit', text: 'USD' }));
    else dd.append(formatted);
    if (note) dd.append(h('span', { class: 'note', text: note }));
    return h('div', { class: `kpi${bad ? ' bad' : ''}`, 'data-k': key }, h('dt', { text: label }), dd);
  }

  function showPoolKpis(sys) {
    const oi = Object.values(sys.open_interest_usd || {}).reduce((a, b) => a + b, 0);
    clear(
      kpis,
      kpi('pool_equity_usd', 'Pool equity', sys.pool_equity_usd, usd(sys.pool_equity_usd)),
      kpi('maint_weighted_assets_usd', 'Weighted collateral', sys.maint_weighted_assets_usd, usd(sys.maint_weighted_assets_usd), 'maintenance weights'),
      kpi('open_interest_usd', 'Open interest', oi, usd(oi), `${Object.keys(sys.open_interest_usd || {}).length} markets`),
      kpi('insurance_fund_usd', 'Insurance fund', sys.insurance_fund_usd, usd(sys.insurance_fund_usd)),
      kpi('bad_debt_usd', 'Bad debt', sys.bad_debt_usd, usd(sys.bad_debt_usd), null, sys.bad_debt_usd > 0),
      kpi('socialized_usd', 'Socialized losses', sys.socialized_usd, usd(sys.socialized_usd), null, sys.socialized_usd > 0),
      kpi('liquidator_fees_usd', 'Liquidator fees', sys.liquidator_fees_usd, usd(sys.liquidator_fees_usd)),
      kpi('house_usd', 'House', sys.house_usd, usd(sys.house_usd), 'spreads and funding'),
    );
    const counted = sys.accounts;
    sub.textContent = `As of ${clock(sys.time_s)} \u00b7 ${num(counted)} accounts \u00b7 last re-margin ${num(sys.last_remargin_ms, 1)} ms \u00b7 ticks ${num(sys.ticks_accepted)} accepted, ${num(sys.ticks_rejected)} rejected`;
  }

  const COLOURS = { healthy: '#17753a', margin_call: '#d99a00', liquidatable: '#b3261e', bankrupt: '#5b1a7a' };
  function showCounts(statusCounts) {
    const old = new Map([...counts.querySelectorAll('a')].map((a) => [a.dataset.status, a.dataset.n]));
    const total = STATUS_NAMES.reduce((a, s) => a + (statusCounts[s] ?? 0), 0);
    const bar = h('div', { class: 'stackbar', 'aria-hidden': 'true' });
    for (const name of STATUS_NAMES) {
      const part = h('i', { title: `${STATUS[name][1]}: ${num(statusCounts[name] ?? 0)}` });
      part.style.width = `${total ? ((statusCounts[name] ?? 0) / total) * 100 : 0}%`;
      part.style.background = COLOURS[name];
      bar.append(part);
    }
    const atRisk = total - (statusCounts.healthy ?? 0);
    clear(
      countsNote,
      bar,
      h('p', { class: 'small muted', text: `${num(atRisk)} of ${num(total)} accounts (${pct(total ? atRisk / total : 0)}) need attention: margin call, liquidatable or bankrupt.` }),
    );
    clear(
      counts,
      STATUS_NAMES.map((name) => {
        const n = statusCounts[name] ?? 0;
        const [icon, label] = STATUS[name];
        const link = h(
          'a',
          { class: `count s-${name}`, href: `#/accounts?status=${name}`, 'data-status': name, 'data-n': String(n) },
          h('span', { class: 'n', text: num(n) }),
          h('span', { class: `status status-${name}` }, h('span', { 'aria-hidden': 'true', text: icon }), ` ${label}`),
        );
        if (old.has(name) && old.get(name) !== String(n)) flash(link);
        return link;
      }),
    );
  }

  function remember(prices) {
    for (const [asset, p] of Object.entries(prices || {})) {
      if (!isNum(p)) continue;
      const list = history.get(asset) || [];
      if (list[list.length - 1] !== p) list.push(p);
      if (list.length > 120) list.shift();
      history.set(asset, list);
    }
  }

  function showOracle(view) {
    const now = Date.now() / 1000;
    remember(Object.fromEntries(Object.entries(view).map(([a, v]) => [a, v.margin_price_usd ?? v.price_usd])));
    clear(
      oracleBody,
      Object.entries(view).map(([asset, o]) => {
        const age = isNum(o.updated_s) ? Math.max(0, now - o.updated_s) : null;
        return h(
          'tr',
          { 'data-asset': asset },
          h('th', { scope: 'row', text: asset }),
          h('td', {}, statusBadge(o.state)),
          numCell(o.margin_price_usd ?? o.price_usd, price(o.margin_price_usd ?? o.price_usd), 'price'),
          numCell(o.confidence_usd, price(o.confidence_usd)),
          numCell(o.stable_price_usd, price(o.stable_price_usd)),
          numCell(o.sources_used, num(o.sources_used)),
          h('td', { class: 'num', text: age === null ? '\u2014' : age < 90 ? `${num(age, 0)} s ago` : clock(o.updated_s) }),
          h('td', {}, (history.get(asset) || []).length > 1
            ? sparkline(history.get(asset), { label: `${asset} price this session` })
            : h('span', { class: 'muted', title: 'collecting prices', text: '\u2014' })),
        );
      }),
    );
  }

  function showRisks(rows) {
    clear(
      riskBody,
      rows.length
        ? rows.map((a) => h(
          'tr',
          { 'data-account': a.account_id },
          h('th', { scope: 'row' }, h('a', { href: `#/account/${encodeURIComponent(a.account_id)}`, text: a.account_id })),
          h('td', {}, statusBadge(a.status)),
          numCell(a.maint_health_usd, usd(a.maint_health_usd)),
          numCell(a.health_ratio, ratio(a.health_ratio)),
          numCell(a.equity_usd, usd(a.equity_usd)),
        ))
        : h('tr', {}, h('td', { colspan: 5, class: 'muted', text: 'No accounts.' })),
    );
  }

  function showOpenInterest(oi) {
    const rows = Object.entries(oi || {}).sort((a, b) => b[1] - a[1]);
    const max = Math.max(0, ...rows.map((r) => r[1]));
    clear(
      oiBody,
      rows.map(([market, v]) => h(
        'tr',
        {},
        h('th', { scope: 'row', text: market }),
        numCell(v, usd(v)),
        h('td', { class: 'bar-cell' }, cellBar(v, max, false)),
      )),
    );
  }

  // ---- the tape -----------------------------------------------------------------------------
  function tapeItem(e) {
    const r = e.result || {};
    const account = e.account_id
      ? h('a', { href: `#/account/${encodeURIComponent(e.account_id)}`, text: e.account_id })
      : null;
    let badge;
    let text;
    if (e.kind === 'margin_call') {
      badge = statusBadge('margin_call');
      text = [account, `: maint health ${usd(r.maint_health_usd)}, ratio ${ratio(r.health_ratio)}`];
    } else if (e.kind === 'liquidation') {
      const [icon] = STATUS.liquidatable;
      badge = h('span', { class: 'status status-liquidatable' }, h('span', { 'aria-hidden': 'true', text: icon }), ' liquidated');
      const steps = Array.isArray(r.steps) ? r.steps.length : 0;
      text = [account, `: ${r.status ?? ''}, ${steps} step${steps === 1 ? '' : 's'}, maint health ${usd(r.maint_health_before_usd)} \u2192 ${usd(r.maint_health_after_usd)}`];
    } else if (e.kind === 'liquidation_flows') {
      badge = h('span', { class: 'pill', text: '\u25c6 fund' });
      text = [`insurance fund ${usd(r.insurance_fund_usd)}, liquidators ${usd(r.liquidator_usd)}, socialized ${usd(r.socialized_usd)}`];
    } else if (e.kind === 'params') {
      badge = h('span', { class: 'pill', text: '\u2699 parameters' });
      text = [`${r.asset ?? ''} version ${r.version ?? ''}`];
    } else if (e.kind === 'oracle') {
      badge = statusBadge(r.new_state);
      text = [`oracle ${r.asset}: ${r.old_state} \u2192 ${r.new_state} (${r.reason})`];
    } else {
      badge = h('span', { class: 'pill', text: e.kind });
      text = [account];
    }
    return h(
      'li',
      { 'data-kind': e.kind, 'data-seq': e.seq ?? '' },
      h('time', { text: clock(e.time) }),
      h('span', {}, badge),
      h('span', { class: 'what' }, ...text),
    );
  }

  function addTape(events, fresh) {
    for (const e of events) {
      const id = e.seq !== undefined && e.seq !== null ? `s${e.seq}` : `o${e.kind}${e.time}${e.result?.asset}`;
      if (state.seen.has(id)) continue;
      state.seen.add(id);
      state.tape.push(e);
    }
    state.tape.sort((a, b) => (b.time - a.time) || ((b.seq ?? 0) - (a.seq ?? 0)));
    state.tape.length = Math.min(state.tape.length, TAPE_MAX);
    clear(
      tape,
      state.tape.length
        ? state.tape.map((e) => {
          const li = tapeItem(e);
          if (fresh && events.includes(e)) li.classList.add('flash');
          return li;
        })
        : h('li', { class: 'empty', text: 'No margin calls or liquidations yet; new ones appear here as they happen.' }),
    );
  }

  const fromJournal = (e) => ({ seq: e.seq, kind: e.kind, account_id: e.account_id, result: e.result || {}, time: e.created_s });

  async function probe(after) {
    const r = await api(`/v1/events?after_seq=${after}&limit=1`, { signal });
    return r.events.length ? r.events[0].seq : null;
  }

  // The journal's last sequence number in O(log n) requests (the API pages forward only).
  // Event 1 is the genesis (every account's rows: large), so the search starts after it.
  async function lastSeq() {
    let lo = 1;
    let step = 256;
    const first = await probe(1);
    if (first === null) return 1;
    lo = first - 1;
    for (;;) {
      const s = await probe(lo + step);
      if (s === null) break;
      lo = s - 1;
      step *= 2;
    }
    let hi = lo + step;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const s = await probe(mid);
      if (s === null) hi = mid;
      else lo = Math.max(mid, s - 1);
    }
    return (await probe(lo)) ?? lo;
  }

  async function loadTape() {
    try {
      let events = [];
      if (pool) {
        const last = await lastSeq();
        const after = Math.max(1, last - 5000);
        for (const kind of ['margin_call', 'liquidation', 'params']) {
          let from = after;
          for (let page = 0; page < 5; page++) {
            const r = await api(`/v1/events?kind=${kind}&after_seq=${from}&limit=1000`, { signal });
            events = events.concat(r.events.map(fromJournal));
            if (r.events.length < 1000) break;
            from = r.events[r.events.length - 1].seq;
          }
        }
      } else {
        const mine = await api('/v1/accounts?sort=maint_health_usd&limit=20', { signal });
        const lists = await Promise.all(
          mine.accounts.map((a) => api(`/v1/accounts/${encodeURIComponent(a.account_id)}/events?limit=30`, { signal })),
        );
        events = lists.flatMap((l) => l.events).filter((e) => TAPE_KINDS.has(e.kind)).map(fromJournal);
      }
      for (const e of events) delete e.result.changes;
      addTape(events, false);
    } catch (err) {
      if (!isAbort(err)) tape.replaceChildren(h('li', {}, errorBox(err, 'journal')));
    }
  }

  // ---- loading ------------------------------------------------------------------------------
  let watched = [];
  let pushes = 0; // system pushes seen: a fetch started before the last one is older than it
  async function loadPool() {
    const version = pushes;
    const sys = await api('/v1/system', { signal });
    state.system = sys;
    if (version === pushes) {
      showPoolKpis(sys);
      showCounts(sys.status_counts);
    }
    showOracle(sys.oracle);
    showRisks(sys.largest_risks || []);
    showOpenInterest(sys.open_interest_usd);
  }

  async function loadOwner() {
    const [list, totals, prices] = await Promise.all([
      api('/v1/accounts?sort=maint_health_usd&limit=1000', { signal }),
      Promise.all(STATUS_NAMES.map((s) => api(`/v1/accounts?status=${s}&limit=1`, { signal }))),
      api('/v1/prices', { signal }),
    ]);
    const countsBy = Object.fromEntries(STATUS_NAMES.map((s, k) => [s, totals[k].total]));
    const sum = (k) => list.accounts.reduce((a, r) => a + (isNum(r[k]) ? r[k] : 0), 0);
    const partial = list.total > list.accounts.length ? ` (first ${num(list.accounts.length)})` : '';
    clear(
      kpis,
      kpi('accounts', 'Accounts', list.total, num(list.total)),
      kpi('equity_usd', `Equity${partial}`, sum('equity_usd'), usd(sum('equity_usd'))),
      kpi('maint_health_usd', `Maint health${partial}`, sum('maint_health_usd'), usd(sum('maint_health_usd'))),
      kpi('init_health_usd', `Init health${partial}`, sum('init_health_usd'), usd(sum('init_health_usd'))),
    );
    showCounts(countsBy);
    showOracle(prices.assets);
    const nearest = list.accounts.slice(0, 10);
    showRisks(nearest);
    sub.textContent = `As of ${clock(Date.now() / 1000)} \u00b7 owner ${who.owner ?? '\u2014'}`;
    const ids = nearest.map((a) => `account:${a.account_id}`).sort();
    if (ids.join() !== watched.join()) {
      watched = ids;
      ctx.live.want(['events', 'oracle', ...ids]);
    }
  }

  const load = async () => {
    try {
      if (pool) await loadPool();
      else await loadOwner();
    } catch (err) {
      if (!isAbort(err)) clear(kpis, errorBox(err, 'could not load the overview'));
    }
  };
  const refresh = throttle(load, pool ? 1000 : 2000);
  ctx.onCleanup(() => refresh.cancel());

  ctx.listen((m) => {
    if (m.channel === 'system' && m.data) {
      pushes += 1;
      showPoolKpis({ ...state.system, ...m.data });
      showCounts(m.data.status_counts);
      remember(m.data.prices_usd);
      for (const [asset, p] of Object.entries(m.data.prices_usd || {})) {
        const td = oracleBody.querySelector(`tr[data-asset="${CSS.escape(asset)}"] td.price`);
        if (td && td.dataset.v !== String(p)) {
          td.dataset.v = String(p);
          td.textContent = price(p);
        }
      }
      refresh();
    } else if (m.channel === 'events' && m.data && TAPE_KINDS.has(m.data.kind)) {
      const { kind, seq, ...result } = m.data;
      addTape([{ seq, kind, account_id: m.account_id, result, time: m.published_s ?? Date.now() / 1000 }], true);
      refresh();
    } else if (m.channel === 'oracle' && m.data) {
      addTape([{ kind: 'oracle', result: m.data, time: m.data.timestamp_s ?? m.published_s }], true);
      refresh();
    } else if (m.channel === 'account') {
      refresh();
    } else if (m.channel === 'subscribed') {
      refresh(); // (re)connected: catch up
    }
  });
  if (pool) ctx.live.want(['system', 'events', 'oracle']);
  else ctx.live.want(['events', 'oracle']);
  if (!pool) ctx.every(3000, refresh);
  load().then(loadTape);
}

export const roles = null;
