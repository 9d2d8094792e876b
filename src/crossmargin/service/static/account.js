// One account: live health, collateral composition, positions and their contribution to
// health, liquidation prices, Greeks, portfolio margin, a stress heatmap, the journal, and a
// what-if box (with real trade / withdraw buttons for the owner).
import {
  ApiError,
  api,
  cached,
  clear,
  clock,
  errorBox,
  field,
  flash,
  h,
  isAbort,
  isNum,
  kusd,
  num,
  numCell,
  pct,
  price,
  qty,
  ratio,
  select,
  stamp,
  statusBadge,
  throttle,
  usd,
} from './lib.js';
import { cellBar, groupedBars, heatColor, legend, priceGauge } from './charts.js';

const COLLATERAL_COLORS = ['#8aa4bd', '#0b62a4', '#d9480f'];

function section(id, title, note, ...content) {
  return h(
    'section',
    { class: 'panel', id, 'aria-labelledby': `${id}-h` },
    h('h2', { id: `${id}-h` }, title, note ? h('span', { class: 'muted', text: note }) : null),
    ...content,
  );
}

function table(id, caption, columns, rows, foot) {
  return h(
    'div',
    { class: 'tablewrap' },
    h(
      'table',
      { id },
      caption ? h('caption', { text: caption }) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => {
        const [label, cls] = Array.isArray(c) ? c : [c, ''];
        return h('th', { scope: 'col', class: cls, text: label });
      }))),
      h('tbody', {}, rows),
      foot ? h('tfoot', {}, foot) : null,
    ),
  );
}

export function render(ctx) {
  const { main, signal, who } = ctx;
  const id = ctx.args.join('/');
  ctx.title(`Account ${id}`);
  const canMove = who.role === 'owner';
  const header = h('div', { id: 'account-header' });
  const kpis = h('dl', { class: 'kpis', id: 'account-kpis', 'aria-label': 'Live health' });
  const updated = h('p', { class: 'sub', id: 'account-updated', 'aria-live': 'off' });
  const body = h('div', { id: 'account-body' });
  main.append(h('p', { class: 'small' }, h('a', { href: '#/accounts', text: '\u2039 All accounts' })), header, updated, kpis, body);

  const parts = {
    collateral: section('collateral', 'Collateral', 'value vs weighted value per asset (USD)'),
    positions: section('positions', 'Positions', 'and their contribution to health'),
    explain: section('explain', 'Health, explained', 'each row\u2019s contribution in USD'),
    liquidation: section('liquidation', 'Liquidation prices', 'price of each asset, alone, at which maintenance health reaches zero'),
    greeks: section('greeks', 'Greeks', 'per underlying'),
    portfolio: section('portfolio', 'Portfolio margin', 'scenario-grid breakdown'),
    buckets: section('buckets', 'Isolated buckets', 'each bucket is margined on its own'),
    heatmap: section('heatmap', 'Stress heatmap', 'maintenance health after moves of the two largest exposures'),
    whatif: section('whatif', 'What if\u2026', canMove ? 'simulate, then trade or withdraw for real' : 'simulate a trade, a withdrawal or another price'),
    history: section('history', 'Journal', 'this account\u2019s events, newest first'),
  };
  body.append(
    parts.collateral,
    h('div', { class: 'grid2' }, parts.liquidation, parts.explain),
    parts.positions,
    parts.heatmap,
    h('div', { class: 'grid2' }, parts.whatif, parts.history),
    parts.greeks,
    parts.portfolio,
    parts.buckets,
  );
  const content = {};
  for (const [k, node] of Object.entries(parts)) {
    content[k] = h('div', { class: 'content' }, h('p', { class: 'muted', text: 'Loading\u2026' }));
    node.append(content[k]);
  }
  const path = `/v1/accounts/${encodeURIComponent(id)}`;
  let detail = null;

  // ---- header and live figures --------------------------------------------------------------
  function showHeader(d) {
    clear(
      header,
      h('div', { class: 'row' },
        h('h1', {}, 'Account ', h('span', { id: 'account-id', text: d.account_id })),
        h('span', { id: 'account-status' }, statusBadge(d.status, true))),
      h('p', { class: 'muted' }, `owner ${d.owner} \u00b7 ${d.mode} margin`),
    );
  }

  function kpi(key, label, value, formatted, note) {
    const dd = h('dd', { 'data-v': isNum(value) ? String(value) : '' });
    const split = formatted.split(' ');
    if (split.length === 2 && split[1] === 'USD') dd.append(split[0], ' ', h('span', { class: 'unit', text: 'USD' }));
    else dd.append(formatted);
    if (note) dd.append(h('span', { class: 'note', text: note }));
    return h('div', { class: `kpi${isNum(value) && value < 0 && key !== 'leverage' ? ' bad' : ''}`, 'data-k': key }, h('dt', { text: label }), dd);
  }

  function showLive(s, initRatio) {
    clear(
      kpis,
      kpi('equity_usd', 'Equity', s.equity_usd, usd(s.equity_usd)),
      kpi('maint_health_usd', 'Maint health', s.maint_health_usd, usd(s.maint_health_usd), `ratio ${ratio(s.health_ratio)}`),
      kpi('init_health_usd', 'Init health', s.init_health_usd, usd(s.init_health_usd), initRatio !== undefined ? `ratio ${ratio(initRatio)}` : null),
      kpi('maint_weighted_assets_usd', 'Weighted assets', s.maint_weighted_assets_usd, usd(s.maint_weighted_assets_usd), 'maintenance'),
      kpi('maint_weighted_liabilities_usd', 'Weighted liabilities', s.maint_weighted_liabilities_usd, usd(s.maint_weighted_liabilities_usd), 'maintenance'),
    );
    const badge = document.getElementById('account-status');
    if (badge && badge.firstChild && badge.firstChild.dataset.status !== s.status) {
      clear(badge, statusBadge(s.status, true));
      flash(badge);
    }
    updated.textContent = `Live \u00b7 updated ${clock(s.remargined_s ?? Date.now() / 1000)}`;
  }

  // ---- sections -----------------------------------------------------------------------------
  function showCollateral(d) {
    const rows = d.collateral || [];
    if (!rows.length) {
      clear(content.collateral, h('p', { class: 'muted', text: 'No balances.' }));
      return;
    }
    const sum = (k) => rows.reduce((a, r) => a + (isNum(r[k]) ? r[k] : 0), 0);
    const names = ['value', 'maint weighted', 'init weighted'];
    const chart = h('div', {},
      legend(names.map((n, k) => ({ name: n, color: COLLATERAL_COLORS[k] }))),
      groupedBars(
        rows.map((r) => ({ label: r.asset, values: [r.value_usd, r.maint_weighted_usd, r.init_weighted_usd] })),
        names,
        { colors: COLLATERAL_COLORS, width: 500, label: `Collateral of ${d.account_id}: value, maintenance-weighted and initial-weighted USD per asset` },
      ));
    const tableNode = table(
      'collateral-table',
      null,
      ['Asset', ['Quantity', 'num'], ['Price', 'num'], ['Value', 'num'], ['Maint weighted', 'num'], ['Init weighted', 'num'], ['Haircut', 'num']],
      rows.map((r) => h(
        'tr',
        { 'data-asset': r.asset },
        h('th', { scope: 'row', text: r.asset }),
        numCell(r.qty, qty(r.qty)),
        numCell(r.price_usd, price(r.price_usd)),
        numCell(r.value_usd, usd(r.value_usd)),
        numCell(r.maint_weighted_usd, usd(r.maint_weighted_usd)),
        numCell(r.init_weighted_usd, usd(r.init_weighted_usd)),
        numCell(null, !r.value_usd ? '\u2014' : r.value_usd > 0
          ? pct(1 - r.maint_weighted_usd / r.value_usd, 1)
          : `markup ${pct(r.maint_weighted_usd / r.value_usd - 1, 2)}`),
      )),
      h('tr', {}, h('td', { text: 'Total' }), h('td'), h('td'),
        numCell(sum('value_usd'), usd(sum('value_usd'))),
        numCell(sum('maint_weighted_usd'), usd(sum('maint_weighted_usd'))),
        numCell(sum('init_weighted_usd'), usd(sum('init_weighted_usd'))), h('td')),
    );
    clear(
      content.collateral,
      h('div', { class: 'grid-collateral' },
        h('div', {}, tableNode,
          h('p', { class: 'hint', text: 'Haircut: the share of a deposit\u2019s value not counted at maintenance. A borrow is a negative balance; its markup is how much more it weighs than its value.' })),
        chart),
    );
  }

  function contributions(rows, kind) {
    const out = new Map();
    for (const r of rows || []) {
      if (r.kind !== kind) continue;
      out.set(r.name, (out.get(r.name) || 0) + r.contribution_usd);
    }
    return out;
  }

  function showPositions(d, maint, init) {
    const rows = (d.positions || []).filter((p) => p.qty !== 0);
    if (!rows.length) {
      clear(content.positions, h('p', { class: 'muted', text: 'No open positions.' }));
      return;
    }
    const cm = contributions(maint, 'position');
    const ci = contributions(init, 'position');
    const max = Math.max(...rows.map((p) => Math.abs(cm.get(p.market) || 0)));
    clear(
      content.positions,
      table(
        'positions-table',
        null,
        ['Market', ['Quantity', 'num'], ['Entry price', 'num'], ['Unrealized funding', 'num'], 'Isolated collateral', ['Maint contribution', 'num'], ['Init contribution', 'num'], ''],
        rows.map((p) => h(
          'tr',
          { 'data-market': p.market },
          h('th', { scope: 'row', text: p.market }),
          numCell(p.qty, qty(p.qty)),
          numCell(p.entry_price, price(p.entry_price)),
          numCell(p.unrealized_funding, usd(p.unrealized_funding)),
          h('td', { text: Object.entries(p.isolated_collateral || {}).map(([a, v]) => `${qty(v)} ${a}`).join(', ') || '\u2014' }),
          numCell(cm.get(p.market), usd(cm.get(p.market))),
          numCell(ci.get(p.market), usd(ci.get(p.market))),
          h('td', { class: 'bar-cell' }, cellBar(cm.get(p.market), max)),
        )),
      ),
      h('p', { class: 'hint', text: 'Contribution: what the position adds to (or takes from) health at the live prices, after weights and margin fractions.' }),
    );
  }

  function showExplain(d, maint, init) {
    const key = (r) => `${r.bucket}|${r.kind}|${r.name}`;
    const initBy = new Map((init || []).map((r) => [key(r), r.contribution_usd]));
    const rows = (maint || []).filter((r) => r.contribution_usd !== 0 || (r.qty ?? 0) !== 0)
      .sort((a, b) => a.contribution_usd - b.contribution_usd);
    const max = Math.max(0, ...rows.map((r) => Math.abs(r.contribution_usd)));
    const total = rows.reduce((a, r) => a + r.contribution_usd, 0);
    const totalInit = (init || []).reduce((a, r) => a + r.contribution_usd, 0);
    const buckets = new Set(rows.map((r) => r.bucket)).size > 1;
    clear(
      content.explain,
      table(
        'explain-table',
        'Most negative first; the totals are the health at each level.',
        ['Row', buckets ? 'Bucket' : null, ['Quantity', 'num'], ['Maint', 'num'], ['Init', 'num'], ''].filter((c) => c !== null),
        rows.map((r) => h(
          'tr',
          { 'data-row': `${r.kind}:${r.name}` },
          h('th', { scope: 'row' }, `${r.name} `, h('span', { class: 'pill', text: r.kind })),
          buckets ? h('td', { text: r.bucket }) : null,
          numCell(r.qty, qty(r.qty)),
          numCell(r.contribution_usd, usd(r.contribution_usd)),
          numCell(initBy.get(key(r)), usd(initBy.get(key(r)))),
          h('td', { class: 'bar-cell' }, cellBar(r.contribution_usd, max)),
        )),
        h('tr', {}, h('td', { text: 'Health' }), buckets ? h('td') : null, h('td'), numCell(total, usd(total)), numCell(totalInit, usd(totalInit)), h('td')),
      ),
    );
  }

  function showLiquidation(d) {
    const lp = (d.margin && d.margin.liquidation_prices) || {};
    const entries = Object.entries(lp);
    if (!entries.length) {
      clear(content.liquidation, h('p', { class: 'muted', text: 'No single price move liquidates this account.' }));
      return;
    }
    clear(
      content.liquidation,
      table(
        'liquidation-table',
        'The blue dot is the live price, red lines the liquidation prices; the shaded side liquidates.',
        ['Asset', ['Price', 'num'], ['Liquidation price', 'num'], ['Distance', 'num'], 'Scale'],
        entries.map(([asset, x]) => {
          const nearest = x.nearest_usd;
          const dist = isNum(nearest) && x.price_usd ? nearest / x.price_usd - 1 : null;
          const side = isNum(x.below_usd) && nearest === x.below_usd ? 'below' : isNum(x.above_usd) ? 'above' : '';
          return h(
            'tr',
            { 'data-asset': asset },
            h('th', { scope: 'row', text: asset }),
            numCell(x.price_usd, price(x.price_usd)),
            numCell(nearest, isNum(nearest) ? `${side === 'below' ? '\u2193' : '\u2191'} ${price(nearest)}` : '\u2014'),
            numCell(dist, pct(dist, 1, true), Math.abs(dist ?? 1) < 0.1 ? 'neg' : ''),
            h('td', {}, priceGauge(x.price_usd, x.below_usd, x.above_usd, { label: `${asset}: live ${price(x.price_usd)}, liquidation ${price(nearest)}` })),
          );
        }),
      ),
    );
  }

  function showGreeks(d) {
    const g = d.greeks;
    if (!g || !Object.keys(g).length) {
      parts.greeks.hidden = true;
      return;
    }
    parts.greeks.hidden = false;
    if (g.error) {
      clear(content.greeks, errorBox(g.error));
      return;
    }
    clear(
      content.greeks,
      table(
        'greeks-table',
        null,
        ['Underlying', ['Spot', 'num'], ['Delta', 'num'], ['Delta USD', 'num'], ['Gamma per 1 %', 'num'], ['Vega per vol pt', 'num'], ['Theta per day', 'num']],
        Object.entries(g).filter(([, x]) => x.delta_qty !== 0 || x.gamma_usd_per_1pct !== 0 || x.vega_usd_per_vol_point !== 0).map(([u, x]) => h(
          'tr',
          { 'data-underlying': u },
          h('th', { scope: 'row', text: u }),
          numCell(x.spot_usd, price(x.spot_usd)),
          numCell(x.delta_qty, `${qty(x.delta_qty)} ${u}`),
          numCell(x.delta_usd, usd(x.delta_usd)),
          numCell(x.gamma_usd_per_1pct, usd(x.gamma_usd_per_1pct)),
          numCell(x.vega_usd_per_vol_point, usd(x.vega_usd_per_vol_point)),
          numCell(x.theta_usd_per_day, usd(x.theta_usd_per_day)),
        )),
      ),
    );
  }

  function showPortfolio(d) {
    const p = d.portfolio;
    if (!p) {
      parts.portfolio.hidden = true;
      return;
    }
    parts.portfolio.hidden = false;
    const level = (name, x) => [
      h('tr', {}, h('th', { scope: 'row', colspan: 2, text: name })),
      h('tr', {}, h('td', { text: 'scenario requirement' }), numCell(x.scenario_requirement_usd, usd(x.scenario_requirement_usd))),
      h('tr', {}, h('td', { text: 'contingencies' }), numCell(x.contingencies_usd?.total, usd(x.contingencies_usd?.total))),
      h('tr', {}, h('td', { text: 'requirement' }), numCell(x.requirement_usd, usd(x.requirement_usd))),
      h('tr', {}, h('td', { text: 'margin (MTM \u2212 requirement)' }), numCell(x.margin_usd, usd(x.margin_usd))),
    ];
    clear(
      content.portfolio,
      h('div', { class: 'grid2' }, h('div', {}, h('dl', { class: 'facts' },
        h('dt', { text: 'Profile' }), h('dd', { text: p.profile }),
        h('dt', { text: 'Mark to market' }), h('dd', { text: usd(p.mtm_usd) }),
        h('dt', { text: 'Worst-scenario loss' }), h('dd', { text: usd(p.loss_usd) })),
      table('portfolio-table', null, ['', ['USD', 'num']], [...level('Maintenance', p.maint || {}), ...level('Initial', p.initial || {})])),
      (p.underlyings || []).length
        ? table('portfolio-underlyings', 'Per underlying', ['Underlying', ['Loss', 'num'], 'Worst scenario'],
          p.underlyings.map((u) => h('tr', {}, h('th', { scope: 'row', text: u.name }), numCell(u.loss_usd, usd(u.loss_usd)), h('td', { text: u.worst_scenario ?? '\u2014' }))))
        : h('div')),
    );
  }

  function showBuckets(d) {
    const buckets = ((d.margin && d.margin.buckets) || []).filter((b) => b.equity_usd !== 0 || b.maint.weighted_liabilities_usd !== 0);
    if (!buckets.length) {
      parts.buckets.hidden = true;
      return;
    }
    parts.buckets.hidden = false;
    clear(
      content.buckets,
      table('buckets-table', null, ['Bucket', ['Equity', 'num'], ['Maint health', 'num'], ['Init health', 'num'], ['Maint ratio', 'num'], 'Liquidatable'],
        buckets.map((b) => h('tr', {},
          h('th', { scope: 'row', text: b.name }),
          numCell(b.equity_usd, usd(b.equity_usd)),
          numCell(b.maint.health_usd, usd(b.maint.health_usd)),
          numCell(b.init.health_usd, usd(b.init.health_usd)),
          numCell(b.maint.health_ratio, ratio(b.maint.health_ratio)),
          h('td', { text: b.liquidatable ? '\u2716 yes' : 'no' })))),
    );
  }

  function showHeatmap(hm) {
    if (!hm.assets || !hm.assets.length) {
      clear(content.heatmap, h('p', { class: 'muted', text: 'No exposure to stress.' }));
      return;
    }
    const [a, b] = hm.assets;
    const grid = hm.maint_health_usd;
    const max = Math.max(...grid.flat().map((v) => Math.abs(v)));
    const movesB = b ? hm.moves_frac : [0];
    const head = [
      b ? h('tr', {}, h('td'), h('th', { scope: 'colgroup', colspan: movesB.length, class: 'axis-label', text: `${b} move \u2192` })) : null,
      h('tr', {}, h('th', { scope: 'col', class: 'axis-label', text: `${a} move \u2193` }),
        movesB.map((m) => h('th', { scope: 'col', class: 'num', text: b ? pct(m, 0, true) : 'maint health' }))),
    ];
    const rows = hm.moves_frac.map((ma, i) => h(
      'tr',
      {},
      h('th', { scope: 'row', class: 'num', text: pct(ma, 0, true) }),
      grid[i].map((v, j) => {
        const colours = heatColor(v, max);
        const td = h('td', {
          'data-v': String(v),
          class: `${v < 0 ? 'h-neg' : ''}${ma === 0 && movesB[j] === 0 ? ' zero' : ''}`,
          title: `${a} ${pct(ma, 0, true)}${b ? `, ${b} ${pct(movesB[j], 0, true)}` : ''}: maint health ${usd(v)}`,
        }, `${v < 0 ? '\u2716 ' : ''}${kusd(v)}`);
        td.style.background = colours.background;
        td.style.color = colours.color;
        return td;
      }),
    ));
    clear(
      content.heatmap,
      h('div', { class: 'tablewrap' },
        h('table', { class: 'heat', id: 'heatmap-table' },
          h('caption', { text: `Maintenance health (USD) if ${a}${b ? ` (rows) and ${b} (columns)` : ''} move by the given percentage; \u2716 marks liquidation, the outlined cell is today.` }),
          h('thead', {}, head),
          h('tbody', {}, rows))),
    );
  }

  function eventText(e) {
    const b = e.body || {};
    const r = e.result || {};
    switch (e.kind) {
      case 'deposit': return `deposit ${qty(b.qty)} ${b.asset}`;
      case 'withdrawal': return `withdrawal ${qty(b.qty)} ${b.asset}`;
      case 'trade': return `trade ${qty(b.qty)} ${b.market}${isNum(r.price) ? ` at ${price(r.price)}` : ''}`;
      case 'margin_call': return `margin call: maint health ${usd(r.maint_health_usd)}, ratio ${ratio(r.health_ratio)}`;
      case 'liquidation': return `liquidation (${r.status ?? ''}): ${(r.steps || []).length} step(s), maint health ${usd(r.maint_health_before_usd)} \u2192 ${usd(r.maint_health_after_usd)}`;
      case 'account_open': return 'account opened';
      case 'funding': return 'funding payment';
      default: return e.kind;
    }
  }

  function kindBadge(kind) {
    if (kind === 'margin_call') return statusBadge('margin_call');
    if (kind === 'liquidation') {
      return h('span', { class: 'status status-liquidatable' }, h('span', { 'aria-hidden': 'true', text: '\u2716' }), ' liquidation');
    }
    return h('span', { class: 'pill', text: kind.replace('_', ' ') });
  }

  let journalAll = false;
  function showHistory(events) {
    const shown = journalAll ? events : events.slice(0, 12);
    clear(
      content.history,
      events.length
        ? table('history-table', null, [['Seq', 'num'], 'Time', 'Kind', 'What'],
          shown.map((e) => h('tr', { 'data-seq': e.seq, 'data-kind': e.kind },
            numCell(e.seq, num(e.seq)),
            h('td', { class: 'nowrap', title: stamp(e.created_s), text: clock(e.created_s) }),
            h('td', {}, kindBadge(e.kind)),
            h('td', { text: eventText(e) }))))
        : h('p', { class: 'muted', text: 'No events yet for this account (its opening is part of the genesis).' }),
      events.length > shown.length
        ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', id: 'journal-more', onclick: () => { journalAll = true; showHistory(events); }, text: `Show all ${num(events.length)} events` })
        : null,
    );
  }

  // ---- what-if and real movements -------------------------------------------------------------
  const whatifResult = h('div', { id: 'whatif-result', 'aria-live': 'polite' });
  function buildWhatIf(markets, assets) {
    const marketSel = select([['', '\u2014 no trade \u2014'], ...markets.map((m) => [m, m])], '', { name: 'market', id: 'wi-market' });
    const tradeQty = h('input', { type: 'number', step: 'any', name: 'trade_qty', id: 'wi-qty', inputmode: 'decimal' });
    const wAsset = select([['', '\u2014 no withdrawal \u2014'], ...assets.map((a) => [a, a])], '', { name: 'asset', id: 'wi-asset' });
    const wQty = h('input', { type: 'number', step: 'any', min: '0', name: 'withdraw_qty', id: 'wi-wqty', inputmode: 'decimal' });
    const pAsset = select([['', '\u2014 live prices \u2014'], ...assets.map((a) => [a, a])], '', { name: 'price_asset', id: 'wi-passet' });
    const pValue = h('input', { type: 'number', step: 'any', min: '0', name: 'price', id: 'wi-price', inputmode: 'decimal' });
    const simulate = h('button', { type: 'submit', class: 'btn', id: 'wi-simulate', text: 'Simulate' });
    const form = h(
      'form',
      { id: 'whatif-form', novalidate: true },
      h('fieldset', {}, h('legend', { text: 'Trade' }),
        h('div', { class: 'bar' }, field('Market', marketSel), field('Quantity (negative sells)', tradeQty))),
      h('fieldset', {}, h('legend', { text: 'Withdrawal' }),
        h('div', { class: 'bar' }, field('Asset', wAsset), field('Quantity', wQty))),
      h('fieldset', {}, h('legend', { text: 'Price (what-if only)' }),
        h('div', { class: 'bar' }, field('Asset', pAsset), field('Price in USD', pValue))),
      h('div', { class: 'bar' },
        simulate,
        canMove ? h('button', { type: 'button', class: 'btn btn-ok', id: 'do-trade', text: 'Place trade' }) : null,
        canMove ? h('button', { type: 'button', class: 'btn btn-danger', id: 'do-withdraw', text: 'Withdraw' }) : null),
      canMove
        ? h('p', { class: 'hint', text: 'Place trade and Withdraw act for real (each click sends a fresh Idempotency-Key); the engine refuses what would break initial margin and says why.' })
        : h('p', { class: 'hint', text: who.role === 'auditor' ? 'Auditors simulate only; nothing here changes the account.' : 'Only the account\u2019s owner trades or withdraws.' }),
    );
    const readNum = (input) => (input.value.trim() === '' ? null : Number(input.value));
    const request = () => {
      const out = { trades: [], withdrawals: {}, prices: {} };
      const tq = readNum(tradeQty);
      if (marketSel.value && tq !== null) out.trades.push({ market: marketSel.value, qty: tq });
      const wq = readNum(wQty);
      if (wAsset.value && wq !== null) out.withdrawals[wAsset.value] = wq;
      const pv = readNum(pValue);
      if (pAsset.value && pv !== null) out.prices[pAsset.value] = pv;
      return out;
    };
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = request();
      if (!body.trades.length && !Object.keys(body.withdrawals).length && !Object.keys(body.prices).length) {
        clear(whatifResult, errorBox('Choose a trade, a withdrawal or a price first.'));
        return;
      }
      simulate.disabled = true;
      try {
        const r = await api(`${path}/what-if`, { method: 'POST', body, signal });
        showWhatIf(r);
      } catch (err) {
        if (!isAbort(err)) clear(whatifResult, errorBox(err, 'what-if'));
      } finally {
        simulate.disabled = false;
      }
    });
    if (canMove) {
      form.querySelector('#do-trade').addEventListener('click', (event) => {
        const tq = readNum(tradeQty);
        if (!marketSel.value || tq === null || tq === 0) {
          clear(whatifResult, errorBox('Choose a market and a non-zero quantity to trade.'));
          return;
        }
        move(event.currentTarget, 'trades', { market: marketSel.value, qty: tq }, `trade ${qty(tq)} ${marketSel.value}`);
      });
      form.querySelector('#do-withdraw').addEventListener('click', (event) => {
        const wq = readNum(wQty);
        if (!wAsset.value || wq === null || !(wq > 0)) {
          clear(whatifResult, errorBox('Choose an asset and a positive quantity to withdraw.'));
          return;
        }
        move(event.currentTarget, 'withdrawals', { asset: wAsset.value, qty: wq }, `withdrawal ${qty(wq)} ${wAsset.value}`);
      });
    }
    clear(content.whatif, form, whatifResult);
  }

  function compareRows(before, after) {
    const line = (label, a, b, fmt) => (!isNum(a) && !isNum(b) ? null : h('tr', {},
      h('th', { scope: 'row', text: label }),
      numCell(a, fmt(a)),
      numCell(b, fmt(b)),
      numCell(isNum(a) && isNum(b) ? b - a : null, isNum(a) && isNum(b) ? fmt(b - a) : '\u2014')));
    return [
      line('Equity', before.equity, after.equity, usd),
      line('Init health', before.init, after.init, usd),
      line('Maint health', before.maint, after.maint, usd),
      line('Init ratio', before.initRatio, after.initRatio, ratio),
      line('Maint ratio', before.maintRatio, after.maintRatio, ratio),
    ];
  }

  const fromReport = (r) => ({
    equity: r.equity_usd,
    init: r.init?.health_usd,
    maint: r.maint?.health_usd,
    initRatio: r.init?.health_ratio,
    maintRatio: r.maint?.health_ratio,
  });
  const fromSummary = (s) => ({
    equity: s.equity_usd,
    init: s.init_health_usd,
    maint: s.maint_health_usd,
    initRatio: null,
    maintRatio: s.health_ratio,
  });

  function showWhatIf(r) {
    const verdict = r.allowed
      ? h('p', { class: 'okbox', id: 'whatif-verdict' }, h('span', { 'aria-hidden': 'true', text: '\u2714 ' }), 'Allowed: initial health stays at or above zero (or the change reduces risk).')
      : h('p', { class: 'alert', id: 'whatif-verdict' }, h('span', { 'aria-hidden': 'true', text: '\u2716 ' }),
        `Would be refused${(r.blocked || []).length ? `: ${r.blocked.join('; ')}` : ': initial health would fall below zero while adding risk'}.`);
    clear(
      whatifResult,
      verdict,
      table('whatif-table', 'Before and after, at the live prices unless a price is given.', ['', ['Before', 'num'], ['After', 'num'], ['Change', 'num']],
        compareRows(fromReport(r.before), fromReport(r.after))),
      r.after && r.after.liquidatable ? h('p', { class: 'alert', text: '\u2716 After this change the account would be liquidatable.' }) : null,
    );
  }

  async function move(button, kind, body, label) {
    button.disabled = true;
    try {
      const r = await api(`${path}/${kind}`, { method: 'POST', body, idempotent: true, signal });
      clear(whatifResult, h('p', { class: 'okbox', role: 'status', id: 'move-result' },
        h('span', { 'aria-hidden': 'true', text: '\u2714 ' }), `Done: ${label} (journal #${num(r.seq)}).`));
      reload();
    } catch (err) {
      if (isAbort(err)) return;
      const b = err instanceof ApiError ? err.body : {};
      clear(
        whatifResult,
        h('div', { class: 'alert', role: 'alert', id: 'move-result' },
          h('strong', { text: `\u2716 Refused: ${label}. ` }),
          h('span', { class: 'error-text', text: b.reason || err.message })),
        b.before && b.would_be
          ? table('refusal-table', 'What it would have left:', ['', ['Now', 'num'], ['Would be', 'num'], ['Change', 'num']], compareRows(fromSummary(b.before), fromSummary(b.would_be)))
          : null,
      );
    } finally {
      button.disabled = false;
    }
  }

  // ---- loading --------------------------------------------------------------------------------
  let formBuilt = false;
  let lastInitRatio;
  let pushes = 0; // live pushes seen: a fetch started before the last one is older than it
  async function loadAll() {
    const version = pushes;
    try {
      const [d, maint, init, events] = await Promise.all([
        api(path, { signal }),
        api(`${path}/explain?level=maint`, { signal }),
        api(`${path}/explain?level=init`, { signal }),
        api(`${path}/events?limit=50`, { signal }),
      ]);
      detail = d;
      showHeader(d);
      lastInitRatio = d.margin?.init?.health_ratio;
      if (version === pushes) showLive(d, lastInitRatio);
      showCollateral(d);
      showPositions(d, maint.rows, init.rows);
      showExplain(d, maint.rows, init.rows);
      showLiquidation(d);
      showGreeks(d);
      showPortfolio(d);
      showBuckets(d);
      showHistory(events.events);
      if (!formBuilt) {
        formBuilt = true;
        Promise.all([cached('/v1/markets'), cached('/v1/assets')])
          .then(([m, a]) => buildWhatIf(Object.keys(m.markets), Object.keys(a.assets)))
          .catch((err) => !isAbort(err) && clear(content.whatif, errorBox(err)));
      }
      loadHeatmap();
    } catch (err) {
      if (isAbort(err)) return;
      if (!detail) {
        ctx.title(err.status === 404 ? 'No such account' : 'Account');
        clear(body);
        clear(kpis);
        clear(header, h('h1', { text: err.status === 404 ? 'No such account' : 'Account' }));
        body.append(errorBox(err), h('p', {}, h('a', { href: '#/accounts', text: 'Back to the accounts' })));
        ctx.live.want([]);
      } else {
        updated.replaceChildren(errorBox(err, 'refresh failed'));
      }
    }
  }

  async function loadHeatmap() {
    try {
      showHeatmap(await api(`${path}/heatmap`, { signal }));
    } catch (err) {
      if (!isAbort(err)) clear(content.heatmap, errorBox(err, 'heatmap'));
    }
  }

  const reload = throttle(loadAll, 1500);
  ctx.onCleanup(() => reload.cancel());
  ctx.listen((m) => {
    if (m.channel === 'account' && m.account_id === id && m.data) {
      pushes += 1;
      if (detail) showLive(m.data, lastInitRatio);
      reload();
    } else if (m.channel === 'events' && m.account_id === id) {
      reload();
    }
  });
  ctx.live.want([`account:${id}`, 'events']);
  loadAll();
}

export const roles = null;
