/* The supervisor view: queues and agents (state, reason, time in state counted locally),
   raised alerts. An agent's login sees only its own row (the server filters). */
"use strict";
(function(){
  const T = Live.T, el = Live.el;
  let snapshot = null;
  function cell(tr, text, cls){ tr.appendChild(el('td', cls || '', text)); }
  function render(snap){
    snapshot = snap;
    const alerts = Live.alertsByQueue(snap);
    const qbody = document.getElementById('queue-rows'); qbody.replaceChildren();
    for(const q of snap.queues){
      const t = q.today || {}, a = q.agents || {}, qa = alerts[q.name] || {};
      const tr = el('tr'); tr.dataset.queue = q.name;
      if(Object.keys(qa).length){ tr.classList.add('alert'); }
      const figs = [
        [q.name, ''], [String(q.waiting), 'num', 'waiting'],
        [Live.duration(q.longest_wait_s), 'num', 'longest_wait'],
        [String(t.offered ?? 0), 'num'], [String(t.answered ?? 0), 'num'],
        [String(t.abandoned ?? 0), 'num', 'abandoned'],
        [Live.percent(t.service_level), 'num', 'service_level'],
        [Live.duration(t.asa_s), 'num', 'asa'], [Live.duration(t.aht_s), 'num'],
        [String(a.staffed ?? 0), 'num'], [String(a.available ?? 0), 'num', 'available'],
        [String(a.on_call ?? 0), 'num'], [String(a.acw ?? 0), 'num'], [String(a.aux ?? 0), 'num'],
      ];
      for(const [text, cls, field] of figs){
        const sev = field && qa[field];
        cell(tr, text, cls + (sev ? ' alert ' + sev : ''));
      }
      qbody.appendChild(tr);
    }
    document.getElementById('queues').hidden = snap.queues.length === 0;
    const abody = document.getElementById('agent-rows'); abody.replaceChildren();
    for(const a of snap.agents){
      const tr = el('tr'); tr.dataset.agent = a.agent; tr.dataset.since = a.since ?? '';
      const d = a.today || {};
      cell(tr, a.agent); cell(tr, a.name || '');
      cell(tr, T['state_' + a.state] || a.state, 'state state-' + a.state);
      cell(tr, a.reason || ''); cell(tr, a.since == null ? '–' : Live.duration(Live.now() - a.since), 'num since');
      cell(tr, a.queue || ''); cell(tr, (a.queues || []).join(', '));
      cell(tr, String(d.handled ?? 0), 'num'); cell(tr, Live.duration(d.talk_s), 'num');
      cell(tr, Live.duration(d.aht_s), 'num'); cell(tr, Live.percent(d.occupancy), 'num');
      abody.appendChild(tr);
    }
    Live.renderAlerts(document.getElementById('alerts'), snap);
    document.getElementById('refresh').textContent = snap.refresh_s;
    document.getElementById('updated').textContent = Live.clock(snap.ts, snap.timezone);
  }
  setInterval(function(){
    for(const tr of document.querySelectorAll('#agent-rows tr')){
      if(!tr.dataset.since){ continue; }
      tr.querySelector('td.since').textContent =
        Live.duration(Live.now() - parseFloat(tr.dataset.since));
    }
  }, 1000);
  if(Live.cfg.snapshot){ render(Live.cfg.snapshot); }
  Live.connect(render);
})();
