// Gridwarden console: opt-in alerts for new cases and SLA breaches, with a sound (Web Audio, no
// file to load) and the browser's Notification API when the user allows it. Off until the user
// turns it on; the choice is kept per user in this browser (localStorage).
"use strict";

(() => {
  const G = window.Gridwarden;
  const { t } = G;
  const $ = (id) => document.getElementById(id);
  const FRESH_MS = 2 * 60 * 1000; // a "new" case older than this (a reconnect replays) is not announced

  const state = { on: false, user: null, announced: new Set(), breached: new Set(), audio: null };
  const key = () => `gridwarden.console.notify.${state.user}`;

  function render() {
    const button = $("notify-toggle");
    button.setAttribute("aria-pressed", String(state.on));
    $("notify-label").textContent = t(state.on ? "notify.on" : "notify.off");
  }

  function beep(high) {
    try {
      state.audio = state.audio || new AudioContext();
      const ctx = state.audio;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = high ? 1320 : 880;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    } catch (err) {
      // No audio device: the visual notification still goes out.
    }
  }

  function announce(title, body, tag, urgent) {
    beep(urgent);
    document.dispatchEvent(new CustomEvent("gridwarden:notified", { detail: { title, body, tag } }));
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(title, { body, tag });
      } catch (err) {
        // Some browsers allow notifications only from a service worker; the sound still plays.
      }
    }
  }

  async function toggle() {
    state.on = !state.on;
    localStorage.setItem(key(), state.on ? "on" : "off");
    render();
    if (state.on) {
      beep(false); // the user's click unlocks audio, and they hear what an alert sounds like
      if ("Notification" in window && Notification.permission === "default") {
        const answer = await Notification.requestPermission();
        if (answer === "denied") G.toast(t("notify.denied"), "error");
      } else if ("Notification" in window && Notification.permission === "denied") {
        G.toast(t("notify.denied"), "error");
      }
    }
  }

  function onCase(e) {
    const { view, previous } = e.detail;
    if (!state.on) return;
    const fresh = Date.now() - Date.parse(view.created_at) < FRESH_MS;
    if (!previous && view.state === "new" && fresh && !state.announced.has(view.id)) {
      state.announced.add(view.id);
      announce(t("notify.new_case", { id: view.id }), t("notify.new_case_body", { camera: view.camera, zone: view.zone, rule: t(`rule.${view.rule}`) }), `case-${view.id}`, false);
    }
  }

  function onBreach(e) {
    const { view, milestone } = e.detail;
    if (!state.on || state.breached.has(view.id)) return;
    state.breached.add(view.id);
    announce(t("notify.escalation", { id: view.id }), t("notify.escalation_body", { camera: view.camera, zone: view.zone, milestone: t(`milestone.${milestone.name}`) }), `sla-${view.id}`, true);
  }

  document.addEventListener("gridwarden:start", (e) => {
    state.user = e.detail.username;
    state.on = localStorage.getItem(key()) === "on";
    render();
  });
  document.addEventListener("gridwarden:language", render);
  document.addEventListener("gridwarden:case", onCase);
  document.addEventListener("gridwarden:breach", onBreach);
  $("notify-toggle").addEventListener("click", () => toggle().catch(() => {}));
})();
