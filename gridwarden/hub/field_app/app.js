/* The officer app: sign in, duty, offers (sound + vibration), tasks, arrived, resolved with a
 * note and a photo. Every action goes through the outbox (queue.js), so a dead network only
 * delays it. No inline scripts or styles, so the page works under a strict Content-Security-Policy. */
'use strict';
(() => {
  const API = '/api/v1/field';
  const TOKEN_KEY = 'gw-field-token';
  const LANG_KEY = 'gw-field-lang';
  const POLL_MS = 4000;
  const POSITION_MS = 15000;
  const S = {
    token: localStorage.getItem(TOKEN_KEY),
    lang: localStorage.getItem(LANG_KEY) || 'zh-CN',
    t: {},
    me: null,
    pos: null,
    posSentAt: 0,
    online: navigator.onLine,
    alerted: new Set(),
    local: new Map(), // taskId -> state after queued actions (shown until the hub confirms)
    photos: new Map(), // taskId -> object URL of the incident snapshot
    drafts: new Map(), // taskId -> {note, file}: what the officer typed survives a re-render
    timer: null,
  };
  const $ = (sel, root = document) => root.querySelector(sel);

  // ------------------------------------------------------------------ language
  function t(key, vars = {}) {
    let text = S.t[key] || key;
    for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, v);
    return text;
  }
  async function loadLang(lang) {
    S.t = await (await fetch(`i18n/${lang}.json`)).json();
    S.lang = lang;
    localStorage.setItem(LANG_KEY, lang);
    document.documentElement.lang = lang;
    $('#lang').textContent = lang === 'zh-CN' ? 'EN' : '中文';
    translate(document);
    setOnline(S.online);
    if (S.me) render();
  }
  function translate(root) {
    root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  }

  // ------------------------------------------------------------------ network
  async function api(path, options = {}) {
    const res = await fetch(API + path, {
      ...options,
      headers: { Authorization: `Bearer ${S.token}`, 'Content-Type': 'application/json', ...(options.headers || {}) },
    });
    if (res.status === 401) { signOut(); throw new Error('signed out'); }
    return res;
  }
  function setOnline(online) {
    S.online = online;
    const net = $('#net');
    net.textContent = t(online ? 'online' : 'offline');
    net.classList.toggle('offline', !online);
  }

  // ------------------------------------------------------------------ geometry
  function metres(a, b) {
    const R = 6371008.8, rad = Math.PI / 180;
    const dp = (b.lat - a.lat) * rad, dl = (b.lon - a.lon) * rad;
    const h = Math.sin(dp / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dl / 2) ** 2;
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }
  function distanceText(task) {
    const c = task.case;
    let m = task.distance_m;
    if (S.pos && c && c.lat != null) m = metres(S.pos, c);
    if (m == null) return '';
    return t('distance', { d: m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km` });
  }
  function drawMap(svg, task) {
    const NS = 'http://www.w3.org/2000/svg';
    svg.replaceChildren();
    const dot = (x, y, r, cls) => {
      const c = document.createElementNS(NS, 'circle');
      c.setAttribute('cx', x); c.setAttribute('cy', y); c.setAttribute('r', r); c.setAttribute('class', cls);
      c.setAttribute('fill', cls === 'case' ? '#b3261e' : '#0a6e4f');
      svg.appendChild(c);
    };
    dot(50, 50, 6, 'case');
    const c = task.case;
    if (!S.pos || !c || c.lat == null) return;
    const dy = (S.pos.lat - c.lat) * 111195, dx = (S.pos.lon - c.lon) * 111195 * Math.cos(c.lat * Math.PI / 180);
    const scale = 40 / Math.max(100, Math.hypot(dx, dy));
    dot(50 + dx * scale, 50 - dy * scale, 5, 'me');
  }

  // ------------------------------------------------------------------ alerts
  function ring() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35].forEach((at) => {
        const osc = ctx.createOscillator();
        osc.frequency.value = 880;
        osc.connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.2);
      });
    } catch (e) { /* no audio: the vibration and the highlighted card remain */ }
    if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
  }

  // ------------------------------------------------------------------ rendering
  function shownState(task) { return S.local.get(task.id) || task.state; }

  function render() {
    const me = S.me;
    $('#who').textContent = me.officer.name;
    $('#duty').checked = me.officer.on_duty;
    $('#state').textContent = t(`state_${me.officer.state}`);
    const offers = me.tasks.filter((x) => shownState(x) === 'offered');
    const offer = offers[0];
    const card = $('#offer');
    card.hidden = !offer;
    if (offer) {
      card.dataset.task = offer.id;
      $('.title', card).textContent = caseTitle(offer);
      $('.dist', card).textContent = distanceText(offer);
      updateCountdown();
      if (!S.alerted.has(offer.id)) {
        S.alerted.add(offer.id);
        card.classList.add('ringing');
        ring();
      }
    }
    const list = $('#tasks');
    const tasks = me.tasks.filter((x) => ['accepted', 'arrived', 'resolved'].includes(shownState(x)));
    list.replaceChildren(...tasks.map(taskCard));
    $('#empty').hidden = Boolean(offer) || tasks.length > 0;
  }

  function caseTitle(task) {
    const c = task.case || {};
    return `#${task.case_id} ${t(`rule_${c.rule}`)} · ${t('camera', { c: c.camera || '' })}`;
  }

  function updateCountdown() {
    const card = $('#offer');
    const task = S.me && S.me.tasks.find((x) => String(x.id) === card.dataset.task);
    if (!task || card.hidden) return;
    const left = Math.max(0, Math.round((Date.parse(task.expires_at) - Date.now()) / 1000));
    $('.countdown', card).textContent = t('seconds_left', { s: left });
  }

  function taskCard(task) {
    const node = $('#task-tpl').content.firstElementChild.cloneNode(true);
    translate(node);
    node.dataset.task = task.id;
    const state = shownState(task);
    const c = task.case || {};
    $('.title', node).textContent = caseTitle(task);
    $('.meta', node).textContent = [c.area_id, new Date(c.detected_at).toLocaleTimeString(S.lang)].filter(Boolean).join(' · ');
    $('.dist', node).textContent = distanceText(task);
    if (c.lat != null) $('.nav', node).href = `geo:${c.lat},${c.lon}?q=${c.lat},${c.lon}`;
    else $('.nav', node).hidden = true;
    drawMap($('.minimap', node), task);
    loadSnapshot(task, $('.snap', node));
    $('.arrive', node).hidden = state !== 'accepted';
    $('.resolve', node).hidden = !['accepted', 'arrived'].includes(state);
    $('.status', node).textContent = t(`task_${state}`);
    $('.arrive', node).addEventListener('click', () => act(task, 'arrive'));
    const form = $('.resolve', node);
    const draft = S.drafts.get(task.id) || { note: '', file: null };
    S.drafts.set(task.id, draft);
    form.elements.note.value = draft.note;
    if (draft.file && window.DataTransfer) {
      const dt = new DataTransfer();
      dt.items.add(draft.file);
      form.elements.photo.files = dt.files;
    }
    form.elements.note.addEventListener('input', (ev) => { draft.note = ev.target.value; });
    form.elements.photo.addEventListener('change', (ev) => { draft.file = ev.target.files[0] || null; });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      S.drafts.delete(task.id);
      act(task, 'resolve', { note: draft.note || null }, draft.file);
    });
    return node;
  }

  async function loadSnapshot(task, img) {
    if (S.photos.has(task.id)) { img.src = S.photos.get(task.id); return; }
    img.hidden = true;
    try {
      const res = await api(`/tasks/${task.id}/snapshot`);
      if (!res.ok) return;
      const url = URL.createObjectURL(await res.blob());
      S.photos.set(task.id, url);
      img.src = url;
      img.hidden = false;
    } catch (e) { /* offline: the card works without the photo */ }
  }

  // ------------------------------------------------------------------ actions
  const NEXT = { accept: 'accepted', decline: 'declined', arrive: 'arrived', resolve: 'resolved' };

  async function act(task, action, body, photo) {
    await GWQueue.add(task.id, action, body, photo);
    S.local.set(task.id, NEXT[action]);
    if (navigator.serviceWorker && navigator.serviceWorker.ready) {
      navigator.serviceWorker.ready.then((reg) => reg.sync && reg.sync.register('gw-flush')).catch(() => {});
    }
    render();
    await showQueued();
    flush();
  }

  async function showQueued() {
    const n = (await GWQueue.all()).length;
    const el = $('#queued');
    el.hidden = n === 0;
    el.textContent = t('queued', { n });
  }

  async function flush() {
    if (!S.token) return;
    const result = await GWQueue.flush(S.token);
    for (const f of result.failed) {
      S.local.delete(f.item.taskId);
      alert(t('action_failed', { m: f.message }));
    }
    await showQueued();
    if (result.sent || result.failed.length) await refresh();
  }

  // ------------------------------------------------------------------ polling and position
  async function refresh() {
    try {
      const res = await api('/me');
      setOnline(true);
      if (!res.ok) return;
      S.me = await res.json();
      const pending = new Set((await GWQueue.all()).map((i) => i.taskId));
      for (const id of [...S.local.keys()]) if (!pending.has(id)) S.local.delete(id);
      render();
      if (pending.size) flush();
    } catch (e) {
      setOnline(false);
    }
  }

  function watchPosition() {
    if (!navigator.geolocation) return;
    navigator.geolocation.watchPosition(
      (p) => {
        S.pos = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy };
        if (Date.now() - S.posSentAt < POSITION_MS) return;
        S.posSentAt = Date.now();
        api('/me/position', { method: 'POST', body: JSON.stringify({ ...S.pos, at: new Date(p.timestamp).toISOString() }) })
          .catch(() => { S.posSentAt = 0; });
      },
      () => {},
      { enableHighAccuracy: true, maximumAge: 10000 },
    );
  }

  // ------------------------------------------------------------------ start
  function signOut() {
    localStorage.removeItem(TOKEN_KEY);
    S.token = null;
    S.me = null;
    clearInterval(S.timer);
    $('#home').hidden = true;
    $('#login').hidden = false;
  }

  async function start() {
    $('#login').hidden = true;
    $('#home').hidden = false;
    await refresh();
    await showQueued();
    watchPosition();
    S.timer = setInterval(() => { refresh(); updateCountdown(); }, POLL_MS);
    setInterval(updateCountdown, 1000);
  }

  document.addEventListener('DOMContentLoaded', async () => {
    await loadLang(S.lang);
    setOnline(navigator.onLine);
    window.addEventListener('online', () => { setOnline(true); flush(); });
    window.addEventListener('offline', () => setOnline(false));
    if (navigator.serviceWorker) {
      navigator.serviceWorker.register('sw.js', { scope: '/field/' }).catch(() => {});
      navigator.serviceWorker.addEventListener('message', (ev) => { if (ev.data === 'flush') flush(); });
    }
    $('#lang').addEventListener('click', () => loadLang(S.lang === 'zh-CN' ? 'en' : 'zh-CN'));
    $('#login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const form = ev.currentTarget;
      $('#login-error').textContent = '';
      const res = await fetch(`${API}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: form.elements.username.value, password: form.elements.password.value }),
      });
      if (!res.ok) {
        $('#login-error').textContent = t(res.status === 403 ? 'not_officer' : 'login_failed');
        return;
      }
      S.token = (await res.json()).token;
      localStorage.setItem(TOKEN_KEY, S.token);
      start();
    });
    $('#duty').addEventListener('change', async (ev) => {
      const res = await api('/me/duty', { method: 'PUT', body: JSON.stringify({ on_duty: ev.target.checked }) });
      if (res.ok) { S.me = await res.json(); render(); }
    });
    $('#offer .accept').addEventListener('click', () => {
      const task = S.me.tasks.find((x) => String(x.id) === $('#offer').dataset.task);
      if (task) act(task, 'accept');
    });
    $('#offer .decline').addEventListener('click', () => {
      const task = S.me.tasks.find((x) => String(x.id) === $('#offer').dataset.task);
      if (task) act(task, 'decline', { reason: $('#offer .reason').selectedOptions[0].textContent });
    });
    $('#logout').addEventListener('click', signOut);
    if (S.token) start(); else $('#login').hidden = false;
  });
})();
