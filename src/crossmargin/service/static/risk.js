// Risk: the stress library applied to the whole pool, and cascade simulations run in the
// background (rounds of liquidation, forced flow, price impact) with progress and price path.
import {
  api,
  clear,
  clock,
  errorBox,
  field,
  h,
  isAbort,
  isNum,
  kusd,
  num,
  numCell,
  pct,
  price,
  select,
  usd,
} from './lib.js';
import { cellBar, legend, lineChart, PALETTE } from './charts.js';

export const roles = ['admin', 'auditor'];

const STABLE_BAND = 0.02;

export function render(ctx) {
  const { main, signal } = ctx;
  ctx.title('Risk');
  ctx.live.want(['system']);
  const stressStatus = h('p', { class: 'sub', id: 'stress-status', 'aria-live': 'polite' });
  const stressBody = h('div', { id: 'stress' }, h('p', { class: 'muted', text: 'Loading\u2026' }));
  const recompute = h('button', { type: 'button', class: 'btn btn-quiet btn-small', id: 'stress-refresh', text: 'Recompute at live prices' });
  const cascadeForm = h('form', { id: 'cascade-form', novalidate: true });
  const progressWrap = h('div', { id: 'cascade-progress', 'aria-live': 'polite' });
  const cascadeResult = h('div', { id: 'cascade-result' });
  main.append(
    h('h1', { text: 'Pool risk' }),
    h('p', { class: 'sub', text: 'What the whole book does under historical stress, and how a shock can cascade through liquidations.' }),
    h('section', { class: 'panel', 'aria-labelledby': 'h-stress' },
      h('h2', { id: 'h-stress' }, 'Stress library', h('span', { class: 'muted', text: 'every scenario applied to every account at once (maintenance level)' })),
      h('div', { class: 'row' }, recompute, stressStatus),
      stressBody),
    h('section', { class: 'panel', 'aria-labelledby': 'h-cascade' },
      h('h2', { id: 'h-cascade' }, 'Cascade simulation', h('span', { class: 'muted', text: 'on a copy of the live book; nothing real is liquidated' })),
      cascadeForm, progressWrap, cascadeResult),
  );

  let live = {};
  async function loadPrices() {
    const p = await api('/v1/prices', { signal });
    live = Object.fromEntries(Object.entries(p.assets).map(([a, v]) => [a, v.margin_price_usd ?? v.price_usd]));
    return p;
  }

  // ---- stress ---------------------------------------------------------------------------------
  function keyMoves(prices) {
    const moves = [];
    for (const [asset, p] of Object.entries(prices)) {
      const base = live[asset];
      if (!isNum(base) || !base) continue;
      if (Math.abs(base - 1) <= STABLE_BAND && Math.abs(p / base - 1) < 0.05) continue;
      const move = p / base - 1;
      if (Math.abs(move) >= 0.0005) moves.push([asset, move]);
    }
    moves.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    if (!moves.length) return '\u2014';
    return h('span', { class: 'moves' }, moves.slice(0, 4).map(([a, m]) => h('span', { class: 'pill', text: `${a} ${pct(m, 0, true)}` })));
  }

  async function loadStress() {
    recompute.disabled = true;
    stressStatus.textContent = 'Computing\u2026';
    try {
      await loadPrices();
      const r = await api('/v1/risk/stress', { signal });
      const rows = r.scenarios.slice().sort((a, b) => b.bad_debt_usd - a.bad_debt_usd || b.maint_deficit_usd - a.maint_deficit_usd);
      const maxDebt = Math.max(0, ...rows.map((s) => s.bad_debt_usd));
      clear(
        stressBody,
        h('div', { class: 'tablewrap' }, h('table', { id: 'stress-table' },
          h('caption', { text: 'Worst bad debt first. Bad debt: the negative equity left after the move; deficit: the maintenance health missing in liquidatable accounts.' }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Scenario' }),
            h('th', { scope: 'col', text: 'Largest moves' }),
            h('th', { scope: 'col', class: 'num', text: 'Liquidatable' }),
            h('th', { scope: 'col', class: 'num', text: 'Bankrupt' }),
            h('th', { scope: 'col', class: 'num', text: 'Maint deficit' }),
            h('th', { scope: 'col', class: 'num', text: 'Bad debt' }),
            h('th', { scope: 'col', class: 'bar-cell' }, h('span', { class: 'visually-hidden', text: 'bad debt bar' })),
            h('th', { scope: 'col', class: 'num', text: 'Pool equity after' }))),
          h('tbody', {}, rows.map((s) => h('tr', { 'data-scenario': s.name },
            h('th', { scope: 'row' }, s.name, h('span', { class: 'desc', text: s.description })),
            h('td', {}, keyMoves(s.prices_usd)),
            numCell(s.accounts_liquidatable, num(s.accounts_liquidatable)),
            numCell(s.accounts_bankrupt, num(s.accounts_bankrupt)),
            numCell(s.maint_deficit_usd, usd(s.maint_deficit_usd)),
            numCell(s.bad_debt_usd, usd(s.bad_debt_usd), s.bad_debt_usd > 0 ? 'neg' : ''),
            h('td', { class: 'bar-cell' }, cellBar(-s.bad_debt_usd, maxDebt, false)),
            numCell(s.pool_equity_usd, usd(s.pool_equity_usd)),
          ))))),
      );
      stressStatus.textContent = `${r.scenarios.length} scenarios at the prices of ${clock(Date.now() / 1000)}.`;
    } catch (err) {
      if (!isAbort(err)) {
        clear(stressBody, errorBox(err, 'stress'));
        stressStatus.textContent = '';
      }
    } finally {
      recompute.disabled = false;
    }
  }
  recompute.addEventListener('click', loadStress);

  // ---- cascade --------------------------------------------------------------------------------
  let polling = null;
  ctx.onCleanup(() => clearTimeout(polling));

  function buildForm(assets) {
    const rows = [['ETH', '-25'], ['', ''], ['', '']].map(([asset, move], k) => {
      const sel = select([['', '\u2014'], ...assets.map((a) => [a, a])], assets.includes(asset) ? asset : '', { name: `asset${k}`, 'data-shock-asset': k });
      const input = h('input', { type: 'number', step: 'any', min: '-99', max: '1000', name: `move${k}`, value: move, 'data-shock-move': k, inputmode: 'decimal' });
      return [field(`Asset ${k + 1}`, sel), field(`Move ${k + 1} in %`, input)];
    });
    const model = select([['engine', 'engine: the liquidation engine (partial, fees, depth)'], ['closeout', 'closeout: close whole accounts (fast)']], 'engine', { name: 'model', id: 'cascade-model' });
    const run = h('button', { type: 'submit', class: 'btn', id: 'cascade-run', text: 'Run cascade' });
    clear(
      cascadeForm,
      h('fieldset', {}, h('legend', { text: 'Initial shock (relative price moves)' }), h('div', { class: 'bar' }, rows)),
      h('div', { class: 'bar' }, field('Liquidation model', model), run),
    );
    cascadeForm.onsubmit = async (event) => {
      event.preventDefault();
      const shocks = {};
      for (let k = 0; k < 3; k++) {
        const a = cascadeForm.querySelector(`[data-shock-asset="${k}"]`).value;
        const m = cascadeForm.querySelector(`[data-shock-move="${k}"]`).value.trim();
        if (a && m !== '') shocks[a] = Number(m) / 100;
      }
      if (!Object.keys(shocks).length) {
        clear(progressWrap, errorBox('Give at least one asset and its move.'));
        return;
      }
      run.disabled = true;
      clear(cascadeResult);
      try {
        const startPrices = { ...live };
        const job = await api('/v1/risk/cascade', { method: 'POST', body: { shocks, model: model.value }, signal });
        poll(job.job_id, startPrices, run);
      } catch (err) {
        run.disabled = false;
        if (!isAbort(err)) clear(progressWrap, errorBox(err, 'cascade'));
      }
    };
  }

  function showProgress(job) {
    const bar = h('progress', { max: '100', value: String(Math.round((job.progress_frac || 0) * 100)), 'aria-label': 'Cascade progress' });
    const state = job.state === 'running' ? 'running' : job.state === 'done' ? '\u2714 done' : '\u2716 failed';
    clear(
      progressWrap,
      h('p', { class: 'row', 'data-state': job.state, id: 'cascade-state' },
        bar,
        h('span', {}, `Job ${job.job_id}: ${state} \u00b7 ${num(job.rounds.length)} round${job.rounds.length === 1 ? '' : 's'} \u00b7 ${num(job.elapsed_s ?? 0, 1)} s`)),
      job.error ? errorBox(job.error, 'cascade failed') : null,
    );
  }

  function showCascade(job, startPrices) {
    const rounds = job.rounds;
    const summary = job.summary || {};
    const finalPrices = summary.final_price_usd;
    const assets = Object.keys(rounds[0]?.price_usd || finalPrices || {});
    const moved = assets.filter((a) => {
      const base = startPrices[a];
      const path = rounds.map((r) => r.price_usd[a]).concat(finalPrices ? [finalPrices[a]] : []);
      return isNum(base) && path.some((p) => Math.abs(p / base - 1) > 0.001);
    });
    const series = moved.map((a, k) => ({
      name: a,
      color: PALETTE[k % PALETTE.length],
      points: [[0, 0], ...rounds.map((r, i) => [i + 1, (r.price_usd[a] / startPrices[a] - 1) * 100]),
        ...(finalPrices && job.state === 'done' ? [[rounds.length + 1, (finalPrices[a] / startPrices[a] - 1) * 100]] : [])],
    }));
    const lastX = rounds.length + 1;
    const roundLabel = (v) => (v === 0 ? 'live' : v === lastX && job.state === 'done' ? 'end' : String(v));
    let cumNotional = 0;
    let cumDebt = 0;
    const cum = rounds.map((r, i) => {
      cumNotional += r.liquidated_notional_usd;
      cumDebt += r.bad_debt_usd;
      return [i + 1, cumNotional, cumDebt];
    });
    const facts = job.state === 'done'
      ? h('dl', { class: 'kpis', id: 'cascade-summary' },
        h('div', { class: 'kpi' }, h('dt', { text: 'Outcome' }), h('dd', { text: summary.converged ? '\u2714 converged' : '\u2716 did not converge' })),
        h('div', { class: 'kpi' }, h('dt', { text: 'Rounds' }), h('dd', { 'data-v': rounds.length, text: num(rounds.length) })),
        h('div', { class: 'kpi' }, h('dt', { text: 'Accounts liquidated' }), h('dd', { 'data-v': summary.liquidated_accounts, text: num(summary.liquidated_accounts) })),
        h('div', { class: 'kpi' }, h('dt', { text: 'Liquidated notional' }), h('dd', { 'data-v': summary.liquidated_notional_usd, text: usd(summary.liquidated_notional_usd) })),
        h('div', { class: `kpi${summary.bad_debt_usd > 0 ? ' bad' : ''}` }, h('dt', { text: 'Bad debt' }), h('dd', { 'data-v': summary.bad_debt_usd, text: usd(summary.bad_debt_usd) })))
      : null;
    clear(
      cascadeResult,
      facts,
      h('div', { class: 'grid2' },
        h('div', {},
          h('h3', { text: 'Price path (% from the live price)' }),
          series.length ? legend(series) : h('p', { class: 'muted', text: 'No price moved.' }),
          series.length
            ? lineChart(series, { width: 600, height: 250, label: `Price path over ${rounds.length} rounds: ${moved.join(', ')}`, yFormat: (v) => `${num(v, 1)} %`, xFormat: roundLabel, xLabel: 'round (live: before the shock; end: after the last round)' })
            : null),
        h('div', {},
          h('h3', { text: 'Cumulative liquidations and bad debt (USD)' }),
          legend([{ name: 'liquidated notional' }, { name: 'bad debt' }]),
          cum.length
            ? lineChart([
              { name: 'liquidated notional', points: [[0, 0], ...cum.map((c) => [c[0], c[1]])] },
              { name: 'bad debt', points: [[0, 0], ...cum.map((c) => [c[0], c[2]])] },
            ], { width: 600, height: 250, label: 'Cumulative liquidated notional and bad debt per round', yFormat: kusd, xFormat: roundLabel, xLabel: 'round' })
            : h('p', { class: 'muted', text: 'Nothing liquidated.' }))),
      h('div', { class: 'tablewrap' }, h('table', { id: 'cascade-rounds' },
        h('caption', { text: 'Rounds: the prices at the start of each round, what was liquidated in it, the fund after it.' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', class: 'num', text: 'Round' }),
          h('th', { scope: 'col', class: 'num', text: 'Liquidatable groups' }),
          h('th', { scope: 'col', class: 'num', text: 'Accounts liquidated' }),
          h('th', { scope: 'col', class: 'num', text: 'Liquidated notional' }),
          h('th', { scope: 'col', class: 'num', text: 'Bad debt' }),
          h('th', { scope: 'col', class: 'num', text: 'Insurance fund' }),
          moved.map((a) => h('th', { scope: 'col', class: 'num', text: a })))),
        h('tbody', {}, rounds.map((r) => h('tr', { 'data-round': r.round },
          numCell(r.round + 1, num(r.round + 1)),
          numCell(r.liquidatable_groups, num(r.liquidatable_groups)),
          numCell(r.liquidated_accounts, num(r.liquidated_accounts)),
          numCell(r.liquidated_notional_usd, usd(r.liquidated_notional_usd)),
          numCell(r.bad_debt_usd, usd(r.bad_debt_usd), r.bad_debt_usd > 0 ? 'neg' : ''),
          numCell(r.insurance_fund_usd, usd(r.insurance_fund_usd)),
          moved.map((a) => numCell(r.price_usd[a], price(r.price_usd[a]))),
        ))))),
    );
  }

  function poll(jobId, startPrices, run) {
    const tick = async () => {
      try {
        const job = await api(`/v1/risk/cascade/${encodeURIComponent(jobId)}`, { signal });
        showProgress(job);
        showCascade(job, startPrices);
        if (job.state === 'running') polling = setTimeout(tick, 300);
        else run.disabled = false;
      } catch (err) {
        run.disabled = false;
        if (!isAbort(err)) clear(progressWrap, errorBox(err, 'cascade'));
      }
    };
    tick();
  }

  loadPrices()
    .then((p) => buildForm(Object.keys(p.assets)))
    .catch((err) => !isAbort(err) && clear(cascadeForm, errorBox(err)));
  loadStress();
}
