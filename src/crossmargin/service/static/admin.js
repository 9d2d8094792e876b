// Risk parameters of the assets: everyone allowed here reads them; a risk admin changes them
// (PATCH /v1/assets/{symbol} with a fresh Idempotency-Key; the server validates and says why).
import {
  api,
  clear,
  dropCache,
  errorBox,
  field,
  h,
  isAbort,
  num,
  numCell,
  price,
  select,
  statusBadge,
} from './lib.js';

export const roles = ['admin', 'auditor'];

const FIELDS = [
  ['init_asset_weight', 'Init asset weight', 'collateral counted at initial margin, in [0, 1]'],
  ['maint_asset_weight', 'Maint asset weight', 'collateral counted at maintenance, in [0, 1]'],
  ['init_liab_weight', 'Init liability weight', 'borrows counted at initial margin, in [1, 10]'],
  ['maint_liab_weight', 'Maint liability weight', 'borrows counted at maintenance, in [1, 10]'],
  ['imf_factor', 'IMF factor', 'size penalty on large balances, in [0, 1]'],
];

export function render(ctx) {
  const { main, signal, who } = ctx;
  const canEdit = who.role === 'admin';
  ctx.title('Risk parameters');
  ctx.live.want(['events']);
  const tableWrap = h('div', { id: 'params' }, h('p', { class: 'muted', text: 'Loading\u2026' }));
  const formWrap = h('div', { id: 'params-form-wrap' });
  const result = h('div', { id: 'params-result', 'aria-live': 'polite' });
  main.append(
    h('h1', { text: 'Risk parameters' }),
    h('p', { class: 'sub', text: 'Asset weights and size factors. A change is a versioned event in the journal and re-margins every account at once.' }),
    h('section', { class: 'panel', 'aria-labelledby': 'h-params' }, h('h2', { id: 'h-params', text: 'Assets' }), tableWrap),
    h('section', { class: 'panel', 'aria-labelledby': 'h-change' },
      h('h2', { id: 'h-change', text: 'Change an asset\u2019s parameters' }),
      canEdit
        ? formWrap
        : h('p', { class: 'info', id: 'params-readonly', text: `Read-only: the ${who.role} role may not change risk parameters (risk admins only).` }),
      result),
  );

  let assets = {};
  async function load() {
    try {
      const [a, p] = await Promise.all([api('/v1/assets', { signal }), api('/v1/prices', { signal })]);
      assets = a.assets;
      clear(
        tableWrap,
        h('div', { class: 'tablewrap' }, h('table', { id: 'params-table' },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Asset' }),
            h('th', { scope: 'col', text: 'Oracle' }),
            h('th', { scope: 'col', class: 'num', text: 'Price' }),
            FIELDS.map(([, label]) => h('th', { scope: 'col', class: 'num', text: label })),
            h('th', { scope: 'col', text: 'Weights' }))),
          h('tbody', {}, Object.entries(assets).map(([symbol, x]) => h('tr', { 'data-asset': symbol },
            h('th', { scope: 'row', text: symbol }),
            h('td', {}, statusBadge(p.assets[symbol]?.state ?? 'halted')),
            numCell(x.price_usd, price(x.price_usd)),
            FIELDS.map(([k]) => {
              const td = numCell(x[k], num(x[k], k === 'imf_factor' ? 4 : 3));
              td.dataset.k = k;
              return td;
            }),
            h('td', { text: x.weights ?? '\u2014' }),
          ))))),
      );
      if (canEdit && !formWrap.firstChild) buildForm();
    } catch (err) {
      if (!isAbort(err)) clear(tableWrap, errorBox(err, 'assets'));
    }
  }

  function buildForm() {
    const symbols = Object.keys(assets);
    const assetSel = select(symbols.map((s) => [s, s]), symbols.includes('ETH') ? 'ETH' : symbols[0], { name: 'asset', id: 'param-asset' });
    const inputs = Object.fromEntries(FIELDS.map(([k]) => [k, h('input', { type: 'number', step: 'any', name: k, id: `param-${k}`, inputmode: 'decimal' })]));
    const fill = () => {
      const x = assets[assetSel.value] || {};
      for (const [k] of FIELDS) inputs[k].value = x[k] ?? '';
    };
    assetSel.addEventListener('change', () => {
      fill();
      clear(result);
    });
    fill();
    const apply = h('button', { type: 'submit', class: 'btn', id: 'param-apply', text: 'Apply change' });
    const form = h('form', { id: 'params-form', novalidate: true },
      h('div', { class: 'bar' }, field('Asset', assetSel)),
      h('div', { class: 'bar' }, FIELDS.map(([k, label, hint]) => field(label, inputs[k], hint))),
      h('div', { class: 'bar' }, apply, h('button', { type: 'button', class: 'btn btn-quiet', text: 'Reset', onclick: () => { fill(); clear(result); } })),
      h('p', { class: 'hint', text: 'Only the fields you change are sent. The server checks the bounds and the order of the weights and explains a refusal.' }));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const symbol = assetSel.value;
      const current = assets[symbol] || {};
      const patch = {};
      for (const [k] of FIELDS) {
        const text = inputs[k].value.trim();
        if (text === '') continue;
        const value = Number(text);
        if (value !== current[k]) patch[k] = Number.isFinite(value) ? value : text;
      }
      if (!Object.keys(patch).length) {
        clear(result, h('p', { class: 'info', text: 'Nothing changed.' }));
        return;
      }
      apply.disabled = true;
      try {
        const r = await api(`/v1/assets/${encodeURIComponent(symbol)}`, { method: 'PATCH', body: patch, idempotent: true, signal });
        dropCache();
        clear(result, h('p', { class: 'okbox', role: 'status', id: 'params-ok' },
          h('span', { 'aria-hidden': 'true', text: '\u2714 ' }),
          `${symbol}: version ${r.version ?? '?'} applied (journal #${num(r.seq)}); every account re-margined.`));
        await load();
        fill();
      } catch (err) {
        if (!isAbort(err)) clear(result, errorBox(err, `${symbol} not changed`));
      } finally {
        apply.disabled = false;
      }
    });
    clear(formWrap, form);
  }

  ctx.listen((m) => {
    if (m.channel === 'events' && m.data && m.data.kind === 'params') load();
  });
  load();
}
