/* The wallboard: one tile per queue with large figures; a figure whose threshold rule is
   raised turns red (critical) or amber (warning). No interaction: it only listens. */
"use strict";
(function(){
  const T = Live.T, el = Live.el;
  const board = document.getElementById('board');
  const FIGS = [
    ['waiting', 'waiting'], ['longest_wait', 'longest_wait'], ['service_level', 'sl_today'],
    ['abandoned', 'abandoned_today'], ['asa', 'asa_today'], ['answered', 'answered_today'],
    ['available', 'agents_available'], ['on_call', 'agents_on_call'],
  ];
  function tile(name){
    const sec = el('section', 'queue'); sec.dataset.queue = name;
    sec.appendChild(el('h2', '', name));
    const figs = el('div', 'figs');
    for(const [field, label] of FIGS){
      const f = el('div', 'fig'); f.dataset.field = field;
      const v = el('span', 'v', '–'); v.dataset.field = field;
      f.appendChild(v); f.appendChild(el('span', 'l', T[label]));
      figs.appendChild(f);
    }
    sec.appendChild(figs);
    return sec;
  }
  let snapshot = null;
  function values(q){
    const t = q.today || {}, a = q.agents || {};
    return {waiting: String(q.waiting), longest_wait: Live.duration(q.longest_wait_s),
      service_level: Live.percent(t.service_level), abandoned: String(t.abandoned ?? 0),
      asa: Live.duration(t.asa_s), answered: String(t.answered ?? 0),
      available: String(a.available ?? 0), on_call: String(a.on_call ?? 0)};
  }
  function render(snap){
    snapshot = snap;
    const alerts = Live.alertsByQueue(snap);
    const names = snap.queues.map(q => q.name);
    for(const sec of Array.from(board.children)){
      if(!names.includes(sec.dataset.queue)){ sec.remove(); } }
    for(const q of snap.queues){
      let sec = board.querySelector('section[data-queue="' + CSS.escape(q.name) + '"]');
      if(!sec){ sec = tile(q.name); board.appendChild(sec); }
      const v = values(q), qa = alerts[q.name] || {};
      sec.classList.toggle('alert', Object.keys(qa).length > 0);
      for(const f of sec.querySelectorAll('.fig')){
        const field = f.dataset.field;
        f.querySelector('.v').textContent = v[field];
        const sev = qa[field];
        f.classList.toggle('alert', !!sev);
        f.classList.toggle('critical', sev === 'critical');
        f.classList.toggle('warning', sev === 'warning');
      }
    }
    document.getElementById('empty').hidden = snap.queues.length > 0;
    Live.renderAlerts(document.getElementById('alerts'), snap);
    document.getElementById('refresh').textContent = snap.refresh_s;
    document.getElementById('updated').textContent = Live.clock(snap.ts, snap.timezone);
  }
  // The longest wait grows between snapshots: count it on locally.
  setInterval(function(){
    if(!snapshot){ return; }
    const ahead = Live.now() - snapshot.ts;
    document.getElementById('clock').textContent = Live.clock(Live.now(), snapshot.timezone);
    for(const q of snapshot.queues){
      if(!q.waiting){ continue; }
      const sec = board.querySelector('section[data-queue="' + CSS.escape(q.name) + '"]');
      if(sec){ sec.querySelector('.v[data-field="longest_wait"]').textContent =
        Live.duration(q.longest_wait_s + ahead); }
    }
  }, 1000);
  if(Live.cfg.snapshot){ render(Live.cfg.snapshot); }
  Live.connect(render);
})();
