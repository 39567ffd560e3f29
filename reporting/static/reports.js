/* Reports (CMS-6): the form asks /api/reports/queues|agents for JSON, draws a table and a
   bar chart (inline SVG, one bar per queue/agent in each period), and links the same query
   as CSV. The query is kept in the address bar, so a report can be bookmarked.
   The page asks for what it can show (cfg.page_rows rows, or ?limit= of the address); a
   longer report says so and fetches the next page (the API's next link) on demand; the CSV
   link has no limit: it downloads every row. */
"use strict";
(function(){
  const cfg = JSON.parse(document.getElementById('page-config').textContent);
  const T = cfg.text;
  const form = document.getElementById('report-form');
  const SVG = 'http://www.w3.org/2000/svg';
  const COLOURS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2',
                   '#4b5563', '#ca8a04'];
  const RATIOS = new Set(['service_level', 'abandon_rate', 'occupancy']);

  function el(tag, cls, text){
    const e = document.createElement(tag);
    if(cls){ e.className = cls; }
    if(text !== undefined){ e.textContent = text; }
    return e;
  }
  function svg(tag, attrs, text){
    const e = document.createElementNS(SVG, tag);
    for(const k in attrs){ e.setAttribute(k, attrs[k]); }
    if(text !== undefined){ e.textContent = text; }
    return e;
  }
  function label(m){ return T['metric_' + m] || m; }
  function show(m, v){
    if(v === null || v === undefined){ return '–'; }
    if(RATIOS.has(m)){ return (v * 100).toFixed(1) + '%'; }
    if(typeof v === 'string'){ return v.replace('T', ' ').slice(0, 19); }
    if(typeof v === 'object'){
      return Object.entries(v).map(([k, s]) => k + ': ' + Math.round(s)).join(', '); }
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }
  function params(){
    const p = new URLSearchParams();
    const kind = form.elements.kind.value;
    for(const name of ['from', 'to', 'group']){
      if(form.elements[name].value){ p.set(name, form.elements[name].value); } }
    const names = form.elements.names.value.split(',').map(s => s.trim()).filter(Boolean);
    if(names.length){ p.set(kind, names.join(',')); }
    const metrics = Array.from(form.querySelectorAll('input[name=metrics]:checked'))
      .map(i => i.value);
    if(metrics.length){ p.set('metrics', metrics.join(',')); }
    return [kind, p];
  }
  function table(data){
    const key = data.kind === 'agent' ? 'agent' : 'queue';
    const head = document.getElementById('report-head'), body = document.getElementById('report-rows');
    head.replaceChildren(); body.replaceChildren();
    const tr = el('tr');
    tr.appendChild(el('th', '', T[key])); tr.appendChild(el('th', '', T.period));
    for(const m of data.metrics){ tr.appendChild(el('th', 'num', label(m))); }
    head.appendChild(tr);
    for(const row of data.rows){
      const r = el('tr'); r.dataset.name = row[key]; r.dataset.period = row.period;
      r.appendChild(el('td', '', row[key])); r.appendChild(el('td', '', row.period));
      for(const m of data.metrics){ r.appendChild(el('td', 'num', show(m, row[m]))); }
      body.appendChild(r);
    }
    if(!data.rows.length){
      const r = el('tr'), td = el('td', '', T.no_rows);
      td.colSpan = data.metrics.length + 2; r.appendChild(td); body.appendChild(r);
    }
  }
  function chart(data){
    const box = document.getElementById('chart'); box.replaceChildren();
    const select = document.getElementById('chart-metric');
    const keep = select.value;
    select.replaceChildren();
    const numeric = data.metrics.filter(m => data.rows.every(r => r[m] === null || typeof r[m] === 'number'));
    for(const m of numeric){ const o = el('option', '', label(m)); o.value = m; select.appendChild(o); }
    if(numeric.includes(keep)){ select.value = keep; }
    const m = select.value, key = data.kind === 'agent' ? 'agent' : 'queue';
    if(!m || !data.rows.length){ return; }
    const periods = [...new Set(data.rows.map(r => r.period))];
    const names = [...new Set(data.rows.map(r => r[key]))];
    const value = {};
    for(const r of data.rows){ value[r.period + '\u0000' + r[key]] = r[m]; }
    const max = Math.max(RATIOS.has(m) ? 1 : 0,
      ...data.rows.map(r => typeof r[m] === 'number' ? r[m] : 0)) || 1;
    const W = Math.max(600, periods.length * (names.length * 14 + 16) + 80), H = 280;
    const left = 56, bottom = 60, top = 14, plotH = H - bottom - top;
    const g = svg('svg', {width: W, height: H + 20 * Math.ceil(names.length / 4),
      viewBox: '0 0 ' + W + ' ' + (H + 20 * Math.ceil(names.length / 4)), role: 'img'});
    g.appendChild(svg('title', {}, label(m)));
    for(let i = 0; i <= 4; i++){
      const y = top + plotH - plotH * i / 4;
      g.appendChild(svg('line', {x1: left, x2: W - 10, y1: y, y2: y, stroke: '#e5e7eb'}));
      g.appendChild(svg('text', {x: left - 6, y: y + 4, 'text-anchor': 'end'},
        show(m, RATIOS.has(m) ? max * i / 4 : Math.round(max * i / 4 * 10) / 10)));
    }
    const slot = (W - left - 10) / periods.length, bw = Math.max(3, Math.min(24, (slot - 8) / names.length));
    periods.forEach(function(p, pi){
      const x0 = left + pi * slot + (slot - bw * names.length) / 2;
      names.forEach(function(n, ni){
        const v = value[p + '\u0000' + n];
        if(typeof v !== 'number'){ return; }
        const h = plotH * v / max;
        const bar = svg('rect', {x: x0 + ni * bw, y: top + plotH - h, width: bw - 1, height: h,
          fill: COLOURS[ni % COLOURS.length], class: 'bar'});
        bar.dataset.name = n; bar.dataset.period = p;
        bar.appendChild(svg('title', {}, n + ' ' + p + ': ' + show(m, v)));
        g.appendChild(bar);
      });
      const tx = left + pi * slot + slot / 2;
      g.appendChild(svg('text', {x: tx, y: top + plotH + 14, 'text-anchor': 'end',
        transform: 'rotate(-30 ' + tx + ' ' + (top + plotH + 14) + ')'}, p));
    });
    names.forEach(function(n, ni){
      const x = left + (ni % 4) * 180, y = H + 4 + 20 * Math.floor(ni / 4);
      g.appendChild(svg('rect', {x: x, y: y, width: 12, height: 12, fill: COLOURS[ni % COLOURS.length]}));
      g.appendChild(svg('text', {x: x + 16, y: y + 10}, n));
    });
    box.appendChild(g);
  }
  let last = null;
  const more = document.getElementById('more');
  const asked = parseInt(new URLSearchParams(location.search).get('limit'), 10);
  const pageRows = asked > 0 ? asked : cfg.page_rows;
  function shown(data, status){
    status.textContent = data.rows.length + ' ' + T.rows + (data.next ? ' (' + T.partial + ')' : '')
      + ' · ' + T.times_in + ' ' + data.timezone;
    more.hidden = !data.next;
  }
  async function run(){
    const [kind, p] = params();
    const status = document.getElementById('report-status');
    const api = new URLSearchParams(p); api.set('limit', String(pageRows));
    const url = '/api/reports/' + kind + '?' + api.toString();
    const page = new URLSearchParams(p); page.set('kind', kind); page.set('lang', cfg.lang);
    if(asked > 0){ page.set('limit', String(asked)); }
    history.replaceState(null, '', '/reports?' + page.toString());
    more.hidden = true;
    const csv = new URLSearchParams(p); csv.set('format', 'csv');
    const link = document.getElementById('csv');
    link.href = '/api/reports/' + kind + '?' + csv.toString(); link.hidden = false;
    status.textContent = T.loading; status.className = 'meta';
    try{
      const r = await fetch(url, {cache: 'no-store', credentials: 'same-origin'});
      const data = await r.json();
      if(!r.ok){ status.textContent = data.error || r.status; status.className = 'error'; return; }
      data.kind = data.kind || (kind === 'agents' ? 'agent' : 'queue');
      last = data;
      table(data); chart(data); shown(data, status);
      document.getElementById('report').dataset.ready = '1';
    }catch(e){ status.textContent = String(e); status.className = 'error'; }
  }
  more.addEventListener('click', async function(){
    if(!last || !last.next){ return; }
    const status = document.getElementById('report-status');
    more.disabled = true;
    try{
      const r = await fetch(last.next, {cache: 'no-store', credentials: 'same-origin'});
      const data = await r.json();
      if(!r.ok){ status.textContent = data.error || r.status; status.className = 'error'; return; }
      last.rows = last.rows.concat(data.rows); last.next = data.next;
      table(last); chart(last); shown(last, status);
    }catch(e){ status.textContent = String(e); status.className = 'error'; }
    finally{ more.disabled = false; }
  });
  form.addEventListener('submit', function(ev){ ev.preventDefault(); run(); });
  document.getElementById('chart-metric').addEventListener('change', function(){ if(last){ chart(last); } });
  if(cfg.autorun){ run(); }
})();
