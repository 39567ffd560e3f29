/* Shared by the live pages: the SSE connection (with reconnect) and number formatting.
   Everything from the server is written with textContent: nothing is parsed as HTML. */
"use strict";
const Live = (function(){
  const cfg = JSON.parse(document.getElementById('page-config').textContent);
  const T = cfg.text;
  // server clock - browser clock, seconds (from the last snapshot)
  let offset = cfg.snapshot ? cfg.snapshot.ts - Date.now() / 1000 : 0;

  function now(){ return Date.now() / 1000 + offset; }
  function duration(s){
    if(s === null || s === undefined){ return '–'; }
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    const mm = String(m).padStart(h ? 2 : 1, '0') + ':' + String(sec).padStart(2, '0');
    return h ? h + ':' + mm : mm;
  }
  function percent(r){ return r === null || r === undefined ? '–' : Math.round(r * 100) + '%'; }
  function clock(ts, tz){
    return new Intl.DateTimeFormat(cfg.lang === 'id' ? 'id-ID' : 'en-GB',
      {timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false})
      .format(new Date(ts * 1000));
  }
  function el(tag, cls, text){
    const e = document.createElement(tag);
    if(cls){ e.className = cls; }
    if(text !== undefined){ e.textContent = text; }
    return e;
  }
  // Which figure an alert's metric colours.
  const METRIC_FIELD = {calls_waiting: 'waiting', longest_wait_s: 'longest_wait',
    service_level: 'service_level', abandon_rate: 'abandoned', asa_s: 'asa',
    agents_available: 'available'};
  function alertsByQueue(snap){
    const out = {};
    for(const a of snap.alerts || []){
      const q = out[a.queue] || (out[a.queue] = {});
      const f = METRIC_FIELD[a.metric] || a.metric;
      if(q[f] !== 'critical'){ q[f] = a.severity; }
    }
    return out;
  }
  function alertText(a){
    const metric = T['metric_' + a.metric] || a.metric;
    let value = a.value;
    if(a.metric === 'service_level' || a.metric === 'abandon_rate'){
      value = percent(a.value); }
    else if(a.metric.endsWith('_s')){ value = duration(a.value); }
    let limit = a.threshold;
    if(a.metric === 'service_level' || a.metric === 'abandon_rate'){ limit = percent(limit); }
    else if(a.metric.endsWith('_s')){ limit = duration(limit); }
    return a.queue + ': ' + metric + ' ' + value + ' (' + a.op + ' ' + limit + ')';
  }
  function renderAlerts(list, snap){
    list.replaceChildren();
    for(const a of snap.alerts || []){
      const li = el('li', a.severity, alertText(a));
      li.dataset.rule = a.rule; li.dataset.queue = a.queue;
      list.appendChild(li);
    }
  }

  // EventSource reconnects by itself; the watchdog also restarts a stream that went silent
  // (the server sends at least every refresh_s).
  function connect(onSnapshot){
    const status = document.getElementById('conn');
    let source = null, last = 0, refresh = cfg.refresh_s || 2;
    function state(name){
      if(status){ status.className = 'conn ' + name; status.textContent = T['conn_' + name]; }
    }
    function open(){
      if(source){ source.close(); }
      state('connecting');
      source = new EventSource(cfg.stream);
      source.addEventListener('snapshot', function(ev){
        const snap = JSON.parse(ev.data);
        offset = snap.ts - Date.now() / 1000;
        refresh = snap.refresh_s || refresh;
        last = Date.now();
        state('live');
        onSnapshot(snap);
      });
      source.onerror = function(){ state('lost'); };
    }
    open();
    setInterval(function(){
      if(last && Date.now() - last > Math.max(3 * refresh, 5) * 1000){ last = 0; open(); }
    }, 1000);
  }
  return {cfg, T, now, duration, percent, clock, el, alertsByQueue, renderAlerts, connect};
})();
