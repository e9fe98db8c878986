// Gridwarden review console: plain JavaScript, no build step, no dependencies.
//
// The console talks to the hub's ordinary REST API with the session token from the log-in
// (kept in sessionStorage: it dies with the tab). Media and the live stream use short-lived
// signed URLs from /api/v1/console/*-urls, because <video src> and EventSource cannot send an
// Authorization header.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "gridwarden.console.token";
  const LANG_HINT_KEY = "gridwarden.console.language";
  const LANGUAGES = ["zh-CN", "en"];
  const DEFAULT_LANGUAGE = "zh-CN";
  const REVIEW_STATES = ["new", "in_review"];
  const DECIDED_STATES = ["confirmed", "rejected", "dispatched", "resolved", "closed"];
  const MEDIA_REFRESH_MARGIN_S = 120; // a media ticket lives 15 min; renew it 2 min before
  const REJECT_REASONS = ["wrong_class", "not_in_zone", "moving", "permitted", "duplicate", "other"];
  const QUEUE_LIMIT = 500;
  // What each action moves a case to. Where it applies comes from the hub's life cycle
  // (GET /case-lifecycle, loaded at start): where its target is an allowed transition, or where
  // review is and the target is allowed from review. Confirm and reject on a "new" case pass
  // through "in_review" first: the life cycle has no shortcut, and the history then shows who
  // took the case into review.
  const ACTIONS = {
    confirm: { to: "confirmed" },
    reject: { to: "rejected" },
    dispatch: { to: "dispatched" },
    resolve: { to: "resolved" },
    close: { to: "closed" },
  };
  let lifecycle = { transitions: {} };
  function applies(action, caseState) {
    const next = lifecycle.transitions[caseState] || [];
    const to = ACTIONS[action].to;
    return next.includes(to) || (next.includes("in_review") && (lifecycle.transitions.in_review || []).includes(to));
  }
  // The states from which an action applies, for the "not now" hint.
  function fromStates(action) {
    return Object.keys(lifecycle.transitions).filter((from) => applies(action, from));
  }
  const KEYS = { c: "confirm", r: "reject", d: "dispatch", s: "resolve", x: "close" };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    me: null,
    lang: localStorage.getItem(LANG_HINT_KEY) || DEFAULT_LANGUAGE,
    messages: {},
    cases: [], // CaseView objects in queue order
    stale: new Set(), // ids still listed although they no longer match the filters (just acted on)
    selectedId: null,
    detail: null,
    clockOffsetMs: 0,
    stream: null,
    streamRetry: null,
    busy: false,
    loginLanguage: null, // chosen on the log-in page; saved for the account at sign-in
    checked: new Set(), // case ids ticked for a bulk decision
    bulkIds: null, // the ids the open reject dialog applies to (null: the open case)
    media: null, // {ticket, expires_at}: one ticket for thumbnails, previews and camera pictures
    counts: { needs_decision: 0, detections: 0 },
    reloadTimer: null,
    breachSeen: new Set(), // cases whose SLA breach was already there or already announced
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ i18n

  function t(key, params) {
    let text = Object.prototype.hasOwnProperty.call(state.messages, key) ? state.messages[key] : key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
    }
    return text;
  }

  function applyI18n(root) {
    for (const el of (root || document).querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of (root || document).querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
    for (const el of (root || document).querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    document.title = t("app.title");
  }

  async function setLanguage(lang) {
    if (!LANGUAGES.includes(lang)) lang = DEFAULT_LANGUAGE;
    const response = await fetch(`i18n/${lang}.json`, { cache: "no-cache" });
    if (!response.ok) throw new Error(`i18n/${lang}.json: HTTP ${response.status}`);
    state.messages = await response.json();
    state.lang = lang;
    localStorage.setItem(LANG_HINT_KEY, lang);
    document.documentElement.lang = lang;
    applyI18n();
    document.dispatchEvent(new CustomEvent("gridwarden:language"));
    if (state.me) {
      renderQueue();
      renderCase();
      renderRejectReasons();
      $("user-name").textContent = t("top.user", { name: state.me.username });
      setLive(state.stream && state.stream.readyState === EventSource.OPEN);
    }
  }

  async function toggleLanguage() {
    const next = state.lang === "en" ? "zh-CN" : "en";
    await setLanguage(next);
    if (state.me) {
      state.me = await api("/console/me", { method: "PUT", body: { language: next } });
    }
  }

  // ------------------------------------------------------------------ formatting

  const fmtDateTime = (iso) =>
    iso ? new Intl.DateTimeFormat(state.lang, { dateStyle: "short", timeStyle: "medium" }).format(new Date(iso)) : "";

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  function fmtAge(iso) {
    const seconds = (Date.now() + state.clockOffsetMs - Date.parse(iso)) / 1000;
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    const rtf = new Intl.RelativeTimeFormat(state.lang, { numeric: "always", style: "narrow" });
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === "second") return rtf.format(-Math.floor(seconds / size), unit);
    }
    return "";
  }

  const stateName = (s) => t(`state.${s}`);
  // What was seen: the class-agnostic static-object rule has no class (the edge sends its rule
  // name or "any"), so say "unidentified object" rather than showing a raw identifier.
  const classesText = (rule, classes) => {
    const named = (classes || []).filter((c) => c && c !== "any" && c !== "static_object");
    if (!named.length) return rule === "static_object" ? t("case.unidentified_object") : t("case.any_object");
    return named.map((c) => (state.messages[`class.${c}`] ? t(`class.${c}`) : c)).join(", ");
  };
  const pluralKey = (base, n) => {
    const form = new Intl.PluralRules(state.lang).select(n);
    return state.messages[`${base}.${form}`] ? `${base}.${form}` : `${base}.other`;
  };
  const ruleName = (r) => (state.messages[`rule.${r}`] ? t(`rule.${r}`) : r);

  function reasonText(reason) {
    if (!reason) return "";
    const [code, ...rest] = reason.split(":");
    if (REJECT_REASONS.includes(code)) {
      const note = rest.join(":").trim();
      return note ? `${t(`reason.${code}`)}: ${note}` : t(`reason.${code}`);
    }
    return reason;
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  let toastTimer = null;
  function toast(message, kind) {
    const box = $("toast");
    box.textContent = message;
    box.dataset.kind = kind || "info";
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), 4000);
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, detail) {
      super((detail && detail.message) || `HTTP ${status}`);
      this.status = status;
      this.detail = detail || {};
    }
  }

  async function api(path, { method = "GET", body, params } = {}) {
    const url = new URL(API + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (Array.isArray(v)) v.forEach((item) => url.searchParams.append(k, item));
      else if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    }
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (response.status === 401 && state.me) {
      logout(t("login.expired"));
    }
    if (!response.ok) throw new ApiError(response.status, data && data.detail);
    return data;
  }

  // ------------------------------------------------------------------ log-in

  function showLogin(message) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("login-username").focus();
  }

  async function onLogin(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const result = await api("/console/login", {
        method: "POST",
        body: { username: $("login-username").value.trim(), password: $("login-password").value },
      });
      state.token = result.token;
      sessionStorage.setItem(TOKEN_KEY, result.token);
      $("login-password").value = "";
      let me = result;
      // A language picked on the log-in page is what the user wants now: it wins over (and
      // replaces) the one saved for the account.
      if (state.loginLanguage && state.loginLanguage !== result.language) {
        me = await api("/console/me", { method: "PUT", body: { language: state.loginLanguage } });
      }
      state.loginLanguage = null;
      await start(me);
    } catch (err) {
      const key = err.status === 401 ? "login.failed" : err.status === 403 ? "login.forbidden" : null;
      if (err.status === 429) {
        $("login-error").textContent = t("login.throttled", { seconds: (err.detail && err.detail.retry_after) || 1 });
      } else {
        $("login-error").textContent = key ? t(key) : t("error.network", { message: err.message });
      }
    }
  }

  function logout(message) {
    // End the session on the server too (best effort: an expired one is already over).
    if (state.token && !message) {
      fetch(API + "/console/logout", { method: "POST", headers: { Authorization: `Bearer ${state.token}` } }).catch(() => {});
    }
    state.token = null;
    state.me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    closeStream();
    clearInterval(state.clockTimer);
    document.dispatchEvent(new CustomEvent("gridwarden:logout"));
    showLogin(message);
  }

  async function start(me) {
    state.me = me;
    // Only roles that may decide get the checkboxes and bulk buttons (integrators only look).
    $("app").classList.toggle("can-decide", me.permissions.includes("cases:transition"));
    await setLanguage(me.language);
    $("user-name").textContent = t("top.user", { name: me.username });
    $("login").hidden = true;
    $("app").hidden = false;
    renderRejectReasons();
    lifecycle = await api("/case-lifecycle");
    await ensureMedia();
    await loadFacets();
    await loadQueue();
    openStream();
    clearInterval(state.clockTimer);
    state.clockTimer = setInterval(tick, 1000);
    if (!state.selectedId && state.cases.length) selectCase(state.cases[0].id);
    document.dispatchEvent(new CustomEvent("gridwarden:start", { detail: me }));
  }

  // ------------------------------------------------------------------ queue

  // "2026-11-30" or "2026-11-30 08:00" (local time) -> ISO; the same in every language.
  function parseLocal(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?$/.exec(text.trim());
    if (!m) return null;
    const date = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] || 0), Number(m[5] || 0));
    return Number.isNaN(date.getTime()) || date.getMonth() !== Number(m[2]) - 1 ? null : date.toISOString();
  }

  function filters() {
    const stateValue = $("filter-state").value;
    const times = {};
    let bad = null;
    for (const key of ["since", "until"]) {
      const raw = $(`filter-${key}`).value.trim();
      if (!raw) continue;
      times[key] = parseLocal(raw);
      if (!times[key]) bad = key;
    }
    const box = $("filter-error");
    box.hidden = !bad;
    box.textContent = bad ? t("filters.bad_time", { value: $(`filter-${bad}`).value }) : "";
    const reviewed = $("filter-reviewed").value;
    return {
      state: stateValue === "review" ? REVIEW_STATES : stateValue === "decided" ? DECIDED_STATES : stateValue ? [stateValue] : [],
      q: $("filter-q").value.trim(),
      camera: $("filter-camera").value,
      zone: $("filter-zone").value,
      rule: $("filter-rule").value,
      klass: $("filter-class").value.trim(),
      reviewed: reviewed === "" ? null : reviewed === "true",
      since: times.since || undefined,
      until: times.until || undefined,
      sort: $("filter-sort").value,
    };
  }

  // Whether a case that changed (live stream) belongs in the list; null when only the server
  // can tell (free text also searches the reasons of the history).
  function matches(view, f) {
    if (f.state.length && !f.state.includes(view.state)) return false;
    if (f.camera && view.camera !== f.camera) return false;
    if (f.zone && view.zone !== f.zone) return false;
    if (f.rule && view.rule !== f.rule) return false;
    if (f.klass && !(view.classes || []).includes(f.klass)) return false;
    if (f.reviewed !== null && Boolean(view.reviewed_at) !== f.reviewed) return false;
    if (f.since && Date.parse(view.detected_at) < Date.parse(f.since)) return false;
    if (f.until && Date.parse(view.detected_at) >= Date.parse(f.until)) return false;
    if (f.q) return null;
    return true;
  }

  function sortCases() {
    const descending = filters().sort.startsWith("-");
    state.cases.sort((a, b) => {
      const d = Date.parse(a.detected_at) - Date.parse(b.detected_at) || a.id - b.id;
      return descending ? -d : d;
    });
  }

  function fillSelect(select, values, labeller) {
    const current = select.value;
    select.replaceChildren(el("option", { value: "", "data-i18n": "filters.any" }, t("filters.any")));
    for (const v of values) select.append(el("option", { value: v }, labeller ? labeller(v) : v));
    select.value = values.includes(current) ? current : "";
  }

  async function loadFacets() {
    const facets = await api("/console/facets");
    fillSelect($("filter-camera"), facets.cameras);
    fillSelect($("filter-zone"), facets.zones);
    fillSelect($("filter-rule"), facets.rules, ruleName);
  }

  function ensureStateOptions() {
    const select = $("filter-state");
    if (select.options.length > 3) return;
    for (const s of Object.keys(state.messages).filter((k) => k.startsWith("state.")).map((k) => k.slice(6))) {
      select.append(el("option", { value: s, "data-i18n": `state.${s}` }, stateName(s)));
    }
  }

  async function ensureMedia() {
    const now = Date.now() / 1000;
    if (state.media && state.media.expires_at - now > MEDIA_REFRESH_MARGIN_S) return state.media;
    try {
      state.media = await api("/console/media-ticket", { method: "POST" });
    } catch (err) {
      state.media = null;
    }
    return state.media;
  }

  const mediaUrl = (path) => (state.media ? `${API}/console/media/${path}?ticket=${encodeURIComponent(state.media.ticket)}` : "");

  function activeFilterCount(f) {
    return [f.q, f.camera, f.zone, f.rule, f.klass, f.reviewed !== null ? "r" : "", f.since, f.until].filter(Boolean).length;
  }

  async function loadQueue() {
    ensureStateOptions();
    const f = filters();
    const page = await api("/console/search", {
      params: {
        q: f.q, state: f.state, camera: f.camera, zone: f.zone, rule: f.rule, class: f.klass,
        reviewed: f.reviewed === null ? undefined : String(f.reviewed), since: f.since, until: f.until, sort: f.sort, limit: QUEUE_LIMIT,
      },
    });
    await ensureMedia();
    if (page.items.length) state.clockOffsetMs = Date.parse(page.items[0].sla.as_of) - Date.now();
    state.cases = page.items;
    state.counts = { needs_decision: page.needs_decision, detections: page.detections };
    watchBreaches(false); // breaches that happened before this load are not news
    state.stale.clear();
    const listed = new Set(state.cases.map((c) => c.id));
    for (const id of [...state.checked]) if (!listed.has(id)) state.checked.delete(id);
    sortCases();
    renderQueue();
  }

  function scheduleReload() {
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(() => loadQueue().catch(() => {}), 800);
  }

  function renderTabs() {
    const value = $("filter-state").value;
    for (const b of document.querySelectorAll(".queue-tabs [data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === value));
    $("tab-decision-count").textContent = String(state.counts.needs_decision);
    $("tab-detections-count").textContent = String(state.counts.detections);
    const n = activeFilterCount(filters());
    $("filters-active").textContent = n ? String(n) : "";
  }

  function thumbnail(c) {
    const box = el("span", { class: "qi-thumb", dataset: { caseId: c.id } });
    const src = mediaUrl(`case/${c.id}/thumbnail`);
    if (src) {
      const img = el("img", { src, alt: "", loading: "lazy", decoding: "async" });
      img.addEventListener("error", () => box.classList.add("no-media"));
      box.append(img);
    } else box.classList.add("no-media");
    // A short clip preview while the pointer rests on the thumbnail (muted, from the start).
    box.addEventListener("mouseenter", () => {
      if (box.classList.contains("no-media") || box.querySelector("video")) return;
      const video = el("video", { src: mediaUrl(`case/${c.id}/preview`), muted: "", autoplay: "", loop: "", playsinline: "", preload: "auto", class: "qi-preview" });
      video.muted = true;
      video.addEventListener("error", () => video.remove());
      box.append(video);
    });
    box.addEventListener("mouseleave", () => {
      const video = box.querySelector("video");
      if (video) {
        video.pause();
        video.removeAttribute("src");
        video.remove();
      }
    });
    return box;
  }

  function renderQueue() {
    const list = $("queue-list");
    list.replaceChildren(
      ...state.cases.map((c) => {
        const box = el("input", { type: "checkbox", class: "qi-check", "aria-label": t("bulk.select_case", { id: c.id }), ...(state.checked.has(c.id) ? { checked: "" } : {}) });
        box.addEventListener("click", (e) => e.stopPropagation());
        box.addEventListener("change", () => {
          if (box.checked) state.checked.add(c.id);
          else state.checked.delete(c.id);
          renderBulk();
        });
        return el(
          "li",
          {
            class: `queue-item${c.id === state.selectedId ? " selected" : ""}${state.stale.has(c.id) ? " stale" : ""}${c.sla.breached ? " breached" : ""}${c.reviewed_at ? " reviewed" : ""}`,
            role: "option",
            "aria-selected": String(c.id === state.selectedId),
            dataset: { caseId: c.id, state: c.state },
            onclick: () => selectCase(c.id),
          },
          box,
          thumbnail(c),
          el("span", { class: "qi-id" }, `#${c.id}`),
          el("span", { class: `state-badge state-${c.state}` }, stateName(c.state)),
          el("span", { class: "qi-where" }, `${c.camera} · ${c.zone}`),
          el("span", { class: "qi-rule" }, [ruleName(c.rule), classesText(c.rule, c.classes), c.category].filter(Boolean).join(" · ")),
          el("span", { class: "qi-age", dataset: { since: c.detected_at } }, fmtAge(c.detected_at)),
        );
      }),
    );
    // Every listed case counts, also one just decided that stays listed until the reviewer moves on.
    const n = state.cases.length;
    $("queue-count").textContent = t(pluralKey("queue.count", n), { count: n });
    $("queue-empty").hidden = state.cases.length > 0;
    const selected = list.querySelector(".selected");
    if (selected) selected.scrollIntoView({ block: "nearest" });
    renderTabs();
    renderBulk();
  }

  function renderBulk() {
    const n = state.checked.size;
    $("bulk-bar").hidden = n === 0;
    $("bulk-count").textContent = t(pluralKey("bulk.count", n), { count: n });
    const all = $("select-all");
    all.checked = n > 0 && state.cases.every((c) => state.checked.has(c.id));
    all.indeterminate = n > 0 && !all.checked;
    const camera = $("filter-camera").value;
    $("mark-reviewed").hidden = !camera || !state.me || !state.me.permissions.includes("cases:transition");
    $("mark-reviewed").textContent = t("bulk.mark_reviewed", { camera });
  }

  async function bulkDecide(action, reason) {
    const ids = [...state.checked];
    if (!ids.length || state.busy) return;
    state.busy = true;
    try {
      const result = await api("/console/bulk", { method: "POST", body: { case_ids: ids, action, ...(reason ? { reason } : {}) } });
      state.checked.clear();
      const failed = result.outcomes.filter((o) => !o.ok);
      toast(t(failed.length ? "bulk.done_some_failed" : "bulk.done", { done: result.done, failed: failed.length, state: stateName(action === "confirm" ? "confirmed" : "rejected") }), failed.length ? "error" : "info");
      await loadQueue();
      if (state.selectedId && ids.includes(state.selectedId)) await loadCase(state.selectedId).catch(() => {});
    } catch (err) {
      toast(t("action.failed", { message: err.message }), "error");
    } finally {
      state.busy = false;
    }
  }

  async function markCameraReviewed() {
    const camera = $("filter-camera").value;
    if (!camera) return;
    try {
      const result = await api("/console/mark-reviewed", { method: "POST", body: { camera } });
      toast(t(pluralKey("bulk.marked", result.marked), { count: result.marked, camera }));
      await loadQueue();
    } catch (err) {
      toast(t("action.failed", { message: err.message }), "error");
    }
  }

  const needsDecision = (s) => REVIEW_STATES.includes(s);

  function upsertCase(view) {
    const f = filters();
    const index = state.cases.findIndex((c) => c.id === view.id);
    const previous = index >= 0 ? state.cases[index] : null;
    document.dispatchEvent(new CustomEvent("gridwarden:case", { detail: { view, previous } }));
    const fits = matches(view, f);
    // The tabs' counts follow the changes the list sees (a full count comes with the next load).
    if (previous && needsDecision(previous.state) !== needsDecision(view.state)) {
      const d = needsDecision(view.state) ? 1 : -1;
      state.counts.needs_decision += d;
      state.counts.detections -= d;
    } else if (!previous && fits !== false && Date.parse(view.created_at) >= Date.parse(view.updated_at) - 1000) {
      state.counts[needsDecision(view.state) ? "needs_decision" : "detections"] += 1;
    }
    if (fits === null) {
      // Free text: only the server can tell; ask it again shortly (several changes, one query).
      if (index >= 0) state.cases[index] = view;
      scheduleReload();
    } else if (index >= 0) {
      state.cases[index] = view;
      if (!fits) {
        if (view.id === state.selectedId) state.stale.add(view.id);
        else state.cases.splice(index, 1);
      } else state.stale.delete(view.id);
    } else if (fits) {
      state.cases.push(view);
      const known = (id, value) => [...$(id).options].some((o) => o.value === value);
      if (!known("filter-camera", view.camera) || !known("filter-zone", view.zone) || !known("filter-rule", view.rule)) {
        loadFacets().catch(() => {});
      }
      if (view.state === "new") toast(t("queue.new_case", { id: view.id, camera: view.camera, zone: view.zone }));
    }
    sortCases();
    renderQueue();
    if (view.id === state.selectedId && state.detail && view.updated_at !== state.detail.updated_at) {
      loadCase(view.id).catch(() => {});
    }
    if (!state.selectedId && state.cases.length) selectCase(state.cases[0].id);
  }

  function move(step) {
    if (!state.cases.length) return;
    const index = state.cases.findIndex((c) => c.id === state.selectedId);
    const next = index < 0 ? 0 : Math.min(state.cases.length - 1, Math.max(0, index + step));
    selectCase(state.cases[next].id);
  }

  async function selectCase(id) {
    const previous = state.selectedId;
    state.selectedId = id;
    if (previous !== id && state.stale.has(previous)) {
      state.stale.delete(previous);
      state.cases = state.cases.filter((c) => c.id !== previous);
    }
    renderQueue();
    await loadCase(id);
  }

  // ------------------------------------------------------------------ one case

  async function loadCase(id) {
    const detail = await api(`/cases/${id}`);
    if (state.selectedId !== id) return;
    const previous = state.detail && state.detail.id === id ? state.detail : null;
    // The incident shown in the player: the one the reviewer picked in the timeline, else the latest.
    const chosen = previous && previous.chosenIncident && detail.incidents.some((i) => i.incident_id === previous.chosenIncident) ? previous.chosenIncident : null;
    const clip = latestEvidence(detail, ["clip"], chosen);
    const snapshot = latestEvidence(detail, ["snapshot_annotated", "snapshot"], chosen);
    // Every incident keeps its own evidence in the timeline: sign its clip and snapshot too.
    const perIncident = detail.incidents.flatMap((inc) => [incidentEvidence(inc, ["clip"]), incidentEvidence(inc, ["snapshot_annotated", "snapshot"])]);
    const wanted = [...new Set([clip, snapshot, ...perIncident].filter(Boolean).map((e) => e.sha256))].slice(0, 64);
    let urls = previous ? previous.urls : {};
    if (wanted.some((sha) => !urls[sha])) {
      urls = (await api("/console/evidence-urls", { method: "POST", body: { sha256: wanted } })).urls;
    }
    if (state.selectedId !== id) return;
    state.clockOffsetMs = Date.parse(detail.sla.as_of) - Date.now();
    state.detail = { ...detail, urls, clip, snapshot, chosenIncident: chosen };
    renderCase();
  }

  function incidentEvidence(incident, kinds) {
    for (const kind of kinds) {
      const found = (incident.evidence || []).find((e) => e.kind === kind);
      if (found) return found;
    }
    return null;
  }

  function latestEvidence(detail, kinds, incidentId) {
    const incidents = incidentId ? detail.incidents.filter((i) => i.incident_id === incidentId) : [...detail.incidents].reverse();
    for (const kind of kinds) {
      for (const incident of incidents) {
        const found = incidentEvidence(incident, [kind]);
        if (found) return found;
      }
    }
    return null;
  }

  function showIncident(incidentId) {
    const d = state.detail;
    if (!d) return;
    const clip = latestEvidence(d, ["clip"], incidentId);
    const snapshot = latestEvidence(d, ["snapshot_annotated", "snapshot"], incidentId);
    state.detail = { ...d, clip, snapshot, chosenIncident: incidentId };
    renderCase();
  }

  function setMedia(node, url, missing) {
    const src = url ? new URL(url, location.origin).href : "";
    if (node.src !== src) {
      if (src) node.src = src;
      else node.removeAttribute("src");
    }
    node.hidden = !src;
    missing.hidden = Boolean(src);
  }

  function renderCase() {
    const d = state.detail;
    $("case-empty").hidden = Boolean(d);
    $("case-view").hidden = !d;
    if (!d) return;
    $("case-view").dataset.caseId = d.id;
    $("case-title").textContent = t("case.title", { id: d.id });
    const badge = $("case-state");
    badge.textContent = stateName(d.state);
    badge.className = `state-badge state-${d.state}`;
    badge.dataset.state = d.state;
    $("case-camera").textContent = `${d.camera} (${d.edge_id})`;
    $("case-zone").textContent = d.zone;
    $("case-rule").textContent = [ruleName(d.rule), d.category].filter(Boolean).join(" · ");
    $("case-classes").textContent = classesText(d.rule, d.classes);
    $("case-reviewed").textContent = d.reviewed_at ? t("case.reviewed_by", { who: d.reviewed_by || "", at: fmtDateTime(d.reviewed_at) }) : t("case.not_reviewed");
    $("case-detected").textContent = fmtDateTime(d.detected_at);
    $("case-incidents").textContent = String(d.incident_count);
    setMedia($("case-video"), d.clip && d.urls[d.clip.sha256], $("case-no-clip"));
    const index = d.chosenIncident ? d.incidents.findIndex((i) => i.incident_id === d.chosenIncident) : -1;
    $("case-clip-caption").textContent = index >= 0 && d.incidents.length > 1 ? t("case.clip_of", { n: index + 1 }) : t("case.clip");
    setMedia($("case-snapshot"), d.snapshot && d.urls[d.snapshot.sha256], $("case-no-snapshot"));
    for (const button of document.querySelectorAll("#actions [data-action]")) {
      button.disabled = !applies(button.dataset.action, d.state);
    }
    renderTimeline(d);
    renderHistory(d);
    renderSla();
  }

  function renderTimeline(d) {
    const items = [];
    d.incidents.forEach((inc, n) => {
      // A static object has no detector confidence (the rule is class-agnostic): say what it is.
      const started = inc.rule === "static_object" || !(inc.confidence > 0)
        ? t("timeline.started_static", { rule: ruleName(inc.rule), what: classesText(inc.rule, inc.classes) })
        : t("timeline.started", { rule: ruleName(inc.rule), classes: classesText(inc.rule, inc.classes), confidence: inc.confidence.toFixed(2) });
      items.push({ at: inc.started_at, kind: "started", text: started, incident: inc, n });
      if (inc.ended_at) items.push({ at: inc.ended_at, kind: "ended", text: t("timeline.ended", { dwell: fmtDuration(inc.dwell_s) }) });
      else items.push({ at: inc.last_event_at, kind: "open", text: t("timeline.open", { at: fmtDateTime(inc.last_event_at), events: inc.event_count }) });
    });
    items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    $("timeline").replaceChildren(
      ...items.map((i) => el("li", { class: `tl-${i.kind}`, dataset: i.incident ? { incident: i.incident.incident_id } : {} }, el("time", { datetime: i.at }, fmtDateTime(i.at)), el("span", {}, i.text), i.incident ? incidentMedia(d, i.incident, i.n) : null)),
    );
  }

  // The incident's own evidence: its snapshot as a thumbnail and a button that plays its clip.
  function incidentMedia(d, inc, n) {
    const snap = incidentEvidence(inc, ["snapshot_annotated", "snapshot"]);
    const clip = incidentEvidence(inc, ["clip"]);
    if (!snap && !clip) return el("span", { class: "muted small" }, t("timeline.no_evidence"));
    const active = (d.chosenIncident || d.incidents[d.incidents.length - 1].incident_id) === inc.incident_id;
    const box = el("div", { class: `tl-media${active ? " active" : ""}` });
    if (snap && d.urls[snap.sha256]) box.append(el("img", { src: d.urls[snap.sha256], alt: t("timeline.snapshot_of", { n: n + 1 }), loading: "lazy" }));
    if (clip || snap) {
      box.append(el("button", { type: "button", class: "link", dataset: { showIncident: inc.incident_id }, onclick: () => showIncident(inc.incident_id) }, t(clip ? "timeline.play_clip" : "timeline.show_snapshot", { n: n + 1 })));
    }
    return box;
  }

  function renderHistory(d) {
    $("history").replaceChildren(
      ...d.history.map((h) =>
        el(
          "li",
          { dataset: { to: h.to_state, actor: h.actor } },
          el("time", { datetime: h.at }, fmtDateTime(h.at)),
          el("span", {}, h.from_state ? t("history.moved", { actor: h.actor, from: stateName(h.from_state), to: stateName(h.to_state) }) : t("history.opened")),
          h.reason && h.from_state ? el("span", { class: "reason", dataset: { reason: h.reason } }, t("history.reason", { reason: reasonText(h.reason) })) : null,
        ),
      ),
    );
  }

  // The SLA clock runs in the browser between refreshes, from the server's report and the
  // measured offset between the server's clock and this one.
  function renderSla() {
    const d = state.detail;
    if (!d) return;
    const now = Date.now() + state.clockOffsetMs;
    const detected = Date.parse(d.sla.detected_at);
    const milestones = Object.values(d.sla.milestones);
    const running = milestones.find((m) => m.running);
    const box = $("sla");
    if (running) {
      const elapsed = (now - detected) / 1000;
      $("sla-label").textContent = t("case.sla_clock", { milestone: t(`milestone.${running.name}`) });
      $("sla-clock").textContent = `${fmtDuration(elapsed)} / ${fmtDuration(running.target_s)}`;
      box.dataset.breached = String(elapsed > running.target_s);
    } else {
      $("sla-label").textContent = t("case.sla_done");
      $("sla-clock").textContent = "";
      box.dataset.breached = String(d.sla.breached);
    }
    $("sla-milestones").replaceChildren(
      ...milestones.map((m) => {
        let text;
        if (m.reached_at) text = t("case.sla_reached", { elapsed: fmtDuration(m.elapsed_s) });
        else if (m.running) text = t("case.sla_running", { elapsed: fmtDuration((now - detected) / 1000), target: fmtDuration(m.target_s) });
        else text = t("case.sla_na");
        const breached = m.breached || (m.running && (now - detected) / 1000 > m.target_s);
        return el("li", { class: breached ? "breached" : "" }, el("span", {}, t(`milestone.${m.name}`)), el("span", {}, text), breached ? el("strong", {}, t("case.sla_breached")) : null);
      }),
    );
  }

  // A breach happens by time passing, not by a change the stream would send: watch the clocks.
  function runningBreach(c, now) {
    const running = Object.values(c.sla.milestones).find((m) => m.running);
    if (!running) return null;
    return (now - Date.parse(c.sla.detected_at)) / 1000 > running.target_s ? running : null;
  }

  function watchBreaches(announce) {
    const now = Date.now() + state.clockOffsetMs;
    for (const c of state.cases) {
      if (state.breachSeen.has(c.id)) continue;
      const milestone = c.sla.breached ? { name: "" } : runningBreach(c, now);
      if (!milestone) continue;
      state.breachSeen.add(c.id);
      if (announce && !c.sla.breached) document.dispatchEvent(new CustomEvent("gridwarden:breach", { detail: { view: c, milestone } }));
    }
  }

  function tick() {
    watchBreaches(true);
    renderSla();
    for (const node of document.querySelectorAll(".qi-age")) node.textContent = fmtAge(node.dataset.since);
  }

  // ------------------------------------------------------------------ actions

  async function transition(id, to, reason) {
    return api(`/cases/${id}/transitions`, { method: "POST", body: reason ? { to, reason } : { to } });
  }

  async function act(action, reason) {
    const d = state.detail;
    const spec = ACTIONS[action];
    if (!d || state.busy) return;
    if (!applies(action, d.state)) {
      toast(t("action.not_now", { action: t(`action.${action}`), state: stateName(d.state), from: fromStates(action).map(stateName).join(" / ") }), "error");
      return;
    }
    state.busy = true;
    try {
      let detail = d;
      if (detail.state === "new" && (action === "confirm" || action === "reject")) {
        detail = await transition(d.id, "in_review");
      }
      detail = await transition(d.id, spec.to, reason);
      state.detail = { ...state.detail, ...detail };
      renderCase();
      upsertCase(detail);
      toast(t("action.done", { id: d.id, state: stateName(detail.state) }));
    } catch (err) {
      toast(t("action.failed", { message: err.message }), "error");
      await loadCase(d.id).catch(() => {});
    } finally {
      state.busy = false;
    }
  }

  function renderRejectReasons() {
    $("reject-reasons").replaceChildren(
      ...REJECT_REASONS.map((code, i) =>
        el(
          "label",
          { class: "reason-option" },
          el("input", { type: "radio", name: "reason", value: code, ...(i === 0 ? { checked: "" } : {}) }),
          el("kbd", {}, String(i + 1)),
          el("span", {}, t(`reason.${code}`)),
        ),
      ),
    );
  }

  function openReject(bulk) {
    const d = state.detail;
    state.bulkIds = bulk ? [...state.checked] : null;
    if (bulk) {
      if (!state.bulkIds.length) return;
      $("reject-title").textContent = t(pluralKey("reject.bulk_title", state.bulkIds.length), { count: state.bulkIds.length });
      $("reject-bulk").textContent = t("reject.bulk_note");
      $("reject-bulk").hidden = false;
    } else {
      if (!d) return;
      if (!applies("reject", d.state)) {
        toast(t("action.not_now", { action: t("action.reject"), state: stateName(d.state), from: fromStates("reject").map(stateName).join(" / ") }), "error");
        return;
      }
      $("reject-title").textContent = t("reject.title", { id: d.id });
      $("reject-bulk").hidden = true;
    }
    $("reject-note").value = "";
    $("reject-form").querySelector('input[name="reason"]').checked = true;
    $("reject-dialog").showModal();
    $("reject-form").querySelector('input[name="reason"]:checked').focus();
  }

  function submitReject(event) {
    event.preventDefault();
    const code = $("reject-form").querySelector('input[name="reason"]:checked').value;
    const note = $("reject-note").value.trim();
    $("reject-dialog").close();
    const reason = note ? `${code}: ${note}` : code;
    if (state.bulkIds) bulkDecide("reject", reason);
    else act("reject", reason);
  }

  // ------------------------------------------------------------------ keyboard

  function onKey(event) {
    if (!state.me || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($("review").hidden) return; // the fleet view and zone editor have their own keys
    const rejectOpen = $("reject-dialog").open;
    if (rejectOpen) {
      const n = Number(event.key);
      if (n >= 1 && n <= REJECT_REASONS.length && event.target.id !== "reject-note") {
        const radio = $("reject-form").querySelectorAll('input[name="reason"]')[n - 1];
        radio.checked = true;
        radio.focus();
        event.preventDefault();
      }
      return; // Enter submits, Escape closes: the dialog's own behaviour
    }
    if ($("help-dialog").open) return;
    const tag = event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    const key = event.key;
    if (key === " " && event.shiftKey && state.selectedId != null) {
      if (state.checked.has(state.selectedId)) state.checked.delete(state.selectedId);
      else state.checked.add(state.selectedId);
      renderQueue();
      event.preventDefault();
      return;
    }
    if (key === "/") {
      $("filter-q").focus();
      event.preventDefault();
      return;
    }
    if (key === "?") {
      $("help-dialog").showModal();
    } else if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "r") openReject(false);
    else if (KEYS[key]) act(KEYS[key]);
    else if (key === " " && tag !== "BUTTON" && tag !== "VIDEO") {
      const video = $("case-video");
      if (video.src) video.paused ? video.play() : video.pause();
    } else return;
    event.preventDefault();
  }

  // ------------------------------------------------------------------ live stream

  function setLive(on) {
    $("live").dataset.state = on ? "on" : "off";
    $("live-text").textContent = t(on ? "live.on" : "live.off");
  }

  function closeStream() {
    clearTimeout(state.streamRetry);
    if (state.stream) state.stream.close();
    state.stream = null;
    setLive(false);
  }

  // Each connection needs a fresh signed URL (valid a minute), so on any error the console
  // closes the EventSource (whose own retry would reuse the expired URL) and opens a new one.
  async function openStream() {
    closeStream();
    if (!state.me) return;
    let url;
    try {
      url = (await api("/console/stream-url", { method: "POST" })).url;
    } catch (err) {
      state.streamRetry = setTimeout(openStream, 3000);
      return;
    }
    const source = new EventSource(url);
    state.stream = source;
    source.addEventListener("ready", () => {
      setLive(true);
      // Changes between loading the queue and the stream opening arrive as "case" events
      // (the server looks a few seconds back), so nothing is missed in between.
    });
    source.addEventListener("case", (event) => upsertCase(JSON.parse(event.data)));
    const reconnect = () => {
      if (state.stream !== source) return;
      source.close();
      setLive(false);
      state.streamRetry = setTimeout(openStream, 1000);
    };
    source.addEventListener("expired", reconnect);
    source.addEventListener("error", reconnect);
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    for (const b of document.querySelectorAll("[data-set-lang]")) {
      b.addEventListener("click", () => {
        state.loginLanguage = b.dataset.setLang;
        setLanguage(b.dataset.setLang).catch((e) => ($("login-error").textContent = e.message));
      });
    }
    $("lang-toggle").addEventListener("click", () => toggleLanguage().catch((e) => toast(e.message, "error")));
    $("help-button").addEventListener("click", () => $("help-dialog").showModal());
    $("logout").addEventListener("click", () => logout());
    $("filters").addEventListener("change", () => loadQueue().catch((e) => toast(e.message, "error")));
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      loadQueue().catch((err) => toast(err.message, "error"));
    });
    let typing = null;
    $("filter-q").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => loadQueue().catch((e) => toast(e.message, "error")), 300);
    });
    for (const b of document.querySelectorAll(".queue-tabs [data-tab]")) {
      b.addEventListener("click", () => {
        $("filter-state").value = b.dataset.tab;
        loadQueue().catch((e) => toast(e.message, "error"));
      });
    }
    $("filters-toggle").addEventListener("click", () => {
      const open = !$("filters").classList.contains("open");
      $("filters").classList.toggle("open", open);
      $("filters-toggle").setAttribute("aria-expanded", String(open));
    });
    $("select-all").addEventListener("change", (e) => {
      if (e.target.checked) for (const c of state.cases) state.checked.add(c.id);
      else state.checked.clear();
      renderQueue();
    });
    $("bulk-confirm").addEventListener("click", () => bulkDecide("confirm"));
    $("bulk-reject").addEventListener("click", () => openReject(true));
    $("bulk-clear").addEventListener("click", () => {
      state.checked.clear();
      renderQueue();
    });
    $("mark-reviewed").addEventListener("click", () => markCameraReviewed());
    $("filters").addEventListener("reset", () => setTimeout(() => loadQueue().catch(() => {}), 0));
    for (const b of document.querySelectorAll("#actions [data-action]")) {
      b.addEventListener("click", () => (b.dataset.action === "reject" ? openReject(false) : act(b.dataset.action)));
    }
    $("reject-form").addEventListener("submit", submitReject);
    $("reject-cancel").addEventListener("click", () => $("reject-dialog").close());
    $("case-snapshot").addEventListener("error", () => toast(t("case.media_error"), "error"));
    document.addEventListener("keydown", onKey);
  }

  async function boot() {
    wire();
    await setLanguage(state.lang);
    if (!state.token) return showLogin();
    try {
      await start(await api("/console/me"));
    } catch (err) {
      if (state.token) logout(err.status === 401 ? t("login.expired") : t("error.network", { message: err.message }));
    }
  }

  // What fleet.js (the fleet view and zone editor) shares with the review console.
  // Opens the review queue on one camera's cases that need a decision (the live view's tiles).
  async function openCamera(camera) {
    const select = $("filter-camera");
    if (![...select.options].some((o) => o.value === camera)) select.append(el("option", { value: camera }, camera));
    select.value = camera;
    $("filter-state").value = "review";
    await loadQueue();
    if (state.cases.length && !state.cases.some((c) => c.id === state.selectedId)) await selectCase(state.cases[0].id);
  }

  window.Gridwarden = { api, t, el, toast, applyI18n, fmtDateTime, fmtAge, ApiError, ensureMedia, mediaUrl, openCamera, pluralKey, me: () => state.me };

  boot();
})();
