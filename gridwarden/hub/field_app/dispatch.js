/* The dispatcher's board: the dispatch queue (most urgent first), who was offered each case and
 * what they did, escalated cases as an alarm, and reassignment by hand. Staff log in as in the
 * review console; no inline scripts. */
'use strict';
(() => {
  const TEXT = {
    'zh-CN': {
      title: '调度台', username: '用户名', password: '密码', sign_in: '登录', login_failed: '登录失败',
      case: '案件', status: '状态', due: '时限', offers: '派单记录', reassign: '改派', empty: '队列为空',
      alarm: '{n} 件无人接单', send: '派给', left: '剩 {m} 分', late: '超时 {m} 分',
      waiting: '待派', offered: '已派单', assigned: '处置中', resolved: '待核查', escalated: '无人接单',
      t_offered: '待接受', t_accepted: '已接受', t_arrived: '已到达', t_resolved: '已处置', t_verified: '已核查',
      t_declined: '拒绝', t_expired: '超时未接', t_withdrawn: '已撤回',
    },
    en: {
      title: 'Dispatch', username: 'User name', password: 'Password', sign_in: 'Sign in', login_failed: 'Log-in failed',
      case: 'Case', status: 'Status', due: 'Due', offers: 'Offers', reassign: 'Reassign', empty: 'The queue is empty',
      alarm: '{n} nobody took', send: 'Send to', left: '{m} min left', late: '{m} min late',
      waiting: 'waiting', offered: 'offered', assigned: 'assigned', resolved: 'to verify', escalated: 'escalated',
      t_offered: 'offered', t_accepted: 'accepted', t_arrived: 'arrived', t_resolved: 'resolved', t_verified: 'verified',
      t_declined: 'declined', t_expired: 'timed out', t_withdrawn: 'withdrawn',
    },
  };
  const S = { token: sessionStorage.getItem('gw-dispatch-token'), lang: localStorage.getItem('gw-dispatch-lang') || 'zh-CN', officers: [], alarms: new Set() };
  const $ = (sel, root = document) => root.querySelector(sel);
  const t = (k, v = {}) => Object.entries(v).reduce((s, [a, b]) => s.replace(`{${a}}`, b), TEXT[S.lang][k] || k);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; };

  function translate() {
    document.documentElement.lang = S.lang;
    document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
    $('#lang').textContent = S.lang === 'zh-CN' ? 'EN' : '中文';
  }

  async function api(path, options = {}) {
    const res = await fetch(path, { ...options, headers: { Authorization: `Bearer ${S.token}`, 'Content-Type': 'application/json' } });
    if (res.status === 401) { sessionStorage.removeItem('gw-dispatch-token'); location.reload(); }
    return res;
  }

  function beep() {
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 660;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.3);
    } catch (e) { /* no audio device */ }
  }

  function row(entry) {
    const tr = el('tr');
    tr.dataset.case = entry.case_id;
    tr.className = entry.status;
    const c = entry.case || {};
    tr.append(el('td', `#${entry.case_id} ${c.rule || ''} · ${c.camera || ''}${c.area_id ? ` · ${c.area_id}` : ''}`));
    const status = el('td', t(entry.status));
    if (entry.escalation_reason) status.append(el('div', entry.escalation_reason, 'status'));
    tr.append(status);
    const minutes = Math.round((Date.parse(entry.due_at) - Date.now()) / 60000);
    tr.append(el('td', minutes >= 0 ? t('left', { m: minutes }) : t('late', { m: -minutes })));
    const list = el('ol');
    for (const task of entry.tasks) {
      const who = task.officer_name || task.officer_id;
      list.append(el('li', `${who}: ${t(`t_${task.state}`)}${task.reason ? ` (${task.reason})` : ''}`));
    }
    const offers = el('td');
    offers.append(list);
    tr.append(offers);
    const cell = el('td');
    const select = el('select');
    select.setAttribute('aria-label', t('reassign'));
    for (const o of S.officers) {
      const opt = el('option', `${o.name} (${o.state})`);
      opt.value = o.id;
      select.append(opt);
    }
    const send = el('button', t('send'));
    send.type = 'button';
    send.addEventListener('click', async () => {
      send.disabled = true;
      await api(`/api/v1/dispatch/cases/${entry.case_id}/reassign`, { method: 'POST', body: JSON.stringify({ officer_id: Number(select.value) }) });
      refresh();
    });
    cell.append(select, send);
    tr.append(cell);
    return tr;
  }

  async function refresh() {
    const [queue, officers] = await Promise.all([api('/api/v1/dispatch/queue'), api('/api/v1/officers')]);
    if (!queue.ok || !officers.ok) return;
    S.officers = await officers.json();
    const entries = await queue.json();
    $('#queue').replaceChildren(...entries.map(row));
    $('#empty').hidden = entries.length > 0;
    const escalated = entries.filter((e) => e.status === 'escalated');
    const alarm = $('#alarm');
    alarm.hidden = escalated.length === 0;
    alarm.textContent = t('alarm', { n: escalated.length });
    if (escalated.some((e) => !S.alarms.has(e.case_id))) beep();
    S.alarms = new Set(escalated.map((e) => e.case_id));
  }

  function start() {
    $('#login').hidden = true;
    $('#board').hidden = false;
    refresh();
    setInterval(refresh, 3000);
  }

  document.addEventListener('DOMContentLoaded', () => {
    translate();
    $('#lang').addEventListener('click', () => {
      S.lang = S.lang === 'zh-CN' ? 'en' : 'zh-CN';
      localStorage.setItem('gw-dispatch-lang', S.lang);
      translate();
      if (S.token) refresh();
    });
    $('#login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.currentTarget.elements;
      const res = await fetch('/api/v1/console/login', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: f.username.value, password: f.password.value }),
      });
      if (!res.ok) { $('#login-error').textContent = t('login_failed'); return; }
      S.token = (await res.json()).token;
      sessionStorage.setItem('gw-dispatch-token', S.token);
      start();
    });
    if (S.token) start(); else $('#login').hidden = false;
  });
})();
