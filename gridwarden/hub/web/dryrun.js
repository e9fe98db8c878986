// Gridwarden console: the dry-run view (integrators and admins).
//
// Runs a candidate configuration and the one in force over recorded video on the hub
// (POST /edges/{e}/cameras/{c}/dry-runs) and shows, per clip, a timeline with one lane per
// configuration, the diff, and both annotated videos side by side. The videos come through
// signed URLs (POST .../video-urls) because a <video> element cannot send the bearer token.
// The zone editor (fleet.js) opens this view with the document being edited as the candidate
// through the "gridwarden:dryrun" event: JSON is YAML, so the document is sent as JSON text.
"use strict";

(() => {
  const G = window.Gridwarden;
  const { api, t, el, toast } = G;
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "gridwarden.console.token"; // app.js keeps the session token here
  const POLL_MS = 500;
  const RULE_COLOURS = { illegal_parking: "#e5534b", occupied_space: "#d29922", static_object: "#a371f7" };
  const LANES = ["candidate", "current"];

  const dry = { edgeId: "", cameraId: "", candidate: null, job: null, poll: null, runs: 0 };

  const enc = encodeURIComponent;
  const base = () => `/edges/${enc(dry.edgeId)}/cameras/${enc(dry.cameraId)}/dry-runs`;

  function setStatus(text, kind) {
    const box = $("dryrun-status");
    box.textContent = text || "";
    box.dataset.kind = kind || "info";
    box.hidden = !text;
  }

  // ------------------------------------------------------------------ edge and camera menus

  async function open(edgeId, cameraId, candidate) {
    if (candidate !== undefined) dry.candidate = candidate;
    renderCandidate();
    let edges = [];
    try {
      edges = (await api("/edges")).map((e) => e.edge_id);
    } catch (err) {
      setStatus(t("dryrun.load_failed", { message: err.message }), "error");
      return;
    }
    if (!edges.includes(edgeId)) edgeId = edges.includes(dry.edgeId) ? dry.edgeId : edges[0] || "";
    $("dryrun-edge").replaceChildren(...edges.map((id) => el("option", { value: id }, id)));
    $("dryrun-edge").value = edgeId;
    await loadCameras(edgeId, cameraId || dry.cameraId);
  }

  async function loadCameras(edgeId, cameraId) {
    dry.edgeId = edgeId;
    let cams = [];
    if (edgeId) {
      try {
        const doc = await api(`/edges/${enc(edgeId)}/config/document`);
        cams = (doc.document.cameras || []).map((c) => c.id);
      } catch (err) {
        if (err.status !== 404) setStatus(t("dryrun.load_failed", { message: err.message }), "error");
      }
    }
    if (dry.candidate && dry.candidate.edgeId === edgeId) {
      for (const id of dry.candidate.cameras) if (!cams.includes(id)) cams.push(id);
    }
    if (!cams.includes(cameraId)) cameraId = cams[0] || "";
    $("dryrun-camera").replaceChildren(...cams.map((id) => el("option", { value: id }, id)));
    $("dryrun-camera").value = cameraId;
    dry.cameraId = cameraId;
    $("dryrun-start").disabled = !cameraId;
  }

  function renderCandidate() {
    const c = dry.candidate;
    $("dryrun-candidate").textContent = c
      ? t("dryrun.candidate_from_editor", { edge: c.edgeId, version: c.baseVersion ?? "–" })
      : t("dryrun.candidate_in_force");
    $("dryrun-candidate-clear").hidden = !c;
  }

  // ------------------------------------------------------------------ starting and polling

  async function start() {
    if (!dry.cameraId) return;
    const run = ++dry.runs;
    clearTimeout(dry.poll);
    $("dryrun-results").replaceChildren();
    $("dryrun-problems").hidden = true;
    const candidate = dry.candidate && dry.candidate.edgeId === dry.edgeId ? dry.candidate.yaml : null;
    const useRecent = $("dryrun-source-recent").checked;
    dry.requested = useRecent ? Number($("dryrun-recent-n").value) : null;
    let request;
    if (useRecent) {
      const n = Number($("dryrun-recent-n").value);
      request = { method: "POST", headers: { "Content-Type": "application/json" } };
      request.body = JSON.stringify({ use_recent_evidence: n, ...(candidate ? { candidate_yaml: candidate } : {}) });
    } else {
      const file = $("dryrun-file").files[0];
      if (!file) return setStatus(t("dryrun.choose_file"), "error");
      const form = new FormData();
      form.append("file", file);
      if (candidate) form.append("candidate_yaml", candidate);
      request = { method: "POST", body: form, headers: {} };
    }
    // api() only sends JSON; the upload is multipart, so it goes through fetch with the same token.
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) request.headers.Authorization = `Bearer ${token}`;
    request.headers.Accept = "application/json";
    $("dryrun-start").disabled = true;
    setProgress(0);
    setStatus(t(useRecent ? "dryrun.starting" : "dryrun.uploading"));
    try {
      const response = await fetch(`/api/v1${base()}`, request);
      const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
      if (!response.ok) throw new G.ApiError(response.status, data && data.detail);
      dry.job = { id: data.id, url: data.url.replace(/^\/api\/v1/, "") };
      poll(run);
    } catch (err) {
      $("dryrun-start").disabled = false;
      $("dryrun-progress").hidden = true;
      showRefusal(err);
    }
  }

  function showRefusal(err) {
    const detail = err.detail || {};
    setStatus(t("dryrun.refused", { message: err.message }), "error");
    if (detail.problems && detail.problems.length) {
      $("dryrun-problems").replaceChildren(
        el("ul", {}, ...detail.problems.map((p) => el("li", {}, typeof p === "string" ? p : JSON.stringify(p)))),
      );
      $("dryrun-problems").hidden = false;
    }
  }

  function setProgress(fraction) {
    const bar = $("dryrun-progress");
    bar.hidden = false;
    bar.value = fraction;
    bar.textContent = `${Math.round(fraction * 100)}%`;
  }

  async function poll(run) {
    if (run !== dry.runs) return;
    let body;
    try {
      body = await api(dry.job.url);
    } catch (err) {
      $("dryrun-start").disabled = false;
      return setStatus(t("dryrun.load_failed", { message: err.message }), "error");
    }
    if (run !== dry.runs) return;
    setProgress(body.progress);
    if (body.status === "queued" || body.status === "running") {
      setStatus(t(`dryrun.${body.status}`, { percent: Math.round(body.progress * 100) }));
      dry.poll = setTimeout(() => poll(run), POLL_MS);
      return;
    }
    $("dryrun-start").disabled = false;
    if (body.status === "failed") return setStatus(t("dryrun.failed", { message: body.error || "" }), "error");
    setStatus(t("dryrun.done", { clips: body.result.clips.length }), "ok");
    let urls = null;
    try {
      urls = (await api(`${dry.job.url}/video-urls`, { method: "POST" })).urls;
    } catch (err) {
      toast(t("dryrun.video_failed", { message: err.message }), "error");
    }
    if (run === dry.runs) renderResult(body, urls);
  }

  // ------------------------------------------------------------------ result

  /** Incidents of one run with their end: the "ended" event, else the end of the clip (still open). */
  function bars(run, duration) {
    if (!run) return [];
    const ends = new Map();
    for (const e of run.events) if (e.event === "ended") ends.set(e.incident_id, e.media_time);
    return run.incidents.map((i) => ({ ...i, end: ends.has(i.incident_id) ? ends.get(i.incident_id) : duration, open: !ends.has(i.incident_id) }));
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  function timeline(clip, videos) {
    const duration = Math.max(clip.duration_s || 0, 0.1);
    const laneH = 44;
    // Horizontal positions in percent of the width (no viewBox), so labels are never stretched.
    const root = svg("svg", { class: "dryrun-timeline", height: laneH * 2 + 22 });
    const pct = (s) => (Math.min(Math.max(s, 0), duration) / duration) * 100;
    const x = (s) => `${pct(s)}%`;
    LANES.forEach((lane, li) => {
      const y = li * laneH;
      root.append(svg("rect", { class: "lane", x: 0, y: y + 2, width: "100%", height: laneH - 4 }));
      // Overlapping incidents share the lane in rows (first row whose last bar has ended).
      const laneBars = bars(clip[lane], duration);
      const rowEnds = [];
      for (const b of laneBars) {
        b.row = rowEnds.findIndex((end) => end <= b.start);
        if (b.row < 0) b.row = rowEnds.push(0) - 1;
        rowEnds[b.row] = b.end;
      }
      const rowH = (laneH - 8) / Math.max(rowEnds.length, 1);
      for (const b of laneBars) {
        const w = `${Math.max(pct(b.end) - pct(b.start), 0.4)}%`;
        const top = y + 4 + b.row * rowH;
        const g = svg(
          "g",
          { class: "incident-bar", "data-lane": lane, "data-zone": b.zone, "data-rule": b.rule, "data-start": b.start, tabindex: "0" },
          svg("title", {}, document.createTextNode(`${b.zone} · ${t(`rule.${b.rule}`)} · ${b.start.toFixed(1)}–${b.end.toFixed(1)} s${b.open ? ` (${t("dryrun.open")})` : ""}`)),
          svg("rect", { x: x(b.start), y: top + 1, width: w, height: rowH - 2, rx: 3, fill: RULE_COLOURS[b.rule] || "#3d8bfd" }),
          svg("text", { x: x(b.start), dx: 4, y: top + rowH / 2 + 4, "font-size": Math.min(13, rowH - 2) }, document.createTextNode(b.zone)),
        );
        const seek = () => {
          for (const v of videos) if (v && v.readyState >= 1) v.currentTime = b.start;
            else if (v) v.addEventListener("loadedmetadata", () => (v.currentTime = b.start), { once: true });
        };
        g.addEventListener("click", seek);
        g.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), seek()));
        root.append(g);
      }
    });
    const step = duration > 60 ? 10 : duration > 20 ? 5 : 1;
    for (let s = 0; s <= duration; s += step) {
      root.append(svg("line", { class: "tick", x1: x(s), x2: x(s), y1: laneH * 2, y2: laneH * 2 + 5 }));
      const anchor = s === 0 ? "start" : pct(s) > 97 ? "end" : "middle";
      root.append(svg("text", { class: "tick-label", x: x(s), y: laneH * 2 + 17, "text-anchor": anchor }, document.createTextNode(`${s}s`)));
    }
    const labels = el("div", { class: "lane-labels" }, ...LANES.map((lane) => el("span", {}, t(`dryrun.lane_${lane}`))));
    return el("div", { class: "timeline-wrap" }, labels, root);
  }

  function diffList(clip) {
    const item = (i) => `${i.zone} · ${t(`rule.${i.rule}`)} · ${i.start.toFixed(1)} s`;
    const group = (key, items) =>
      el(
        "div",
        { class: `diff-group ${key}`, dataset: { diff: key } },
        el("h4", {}, t(`dryrun.diff_${key}`, { count: items.length })),
        items.length ? el("ul", {}, ...items.map((i) => el("li", { dataset: { zone: i.zone } }, item(i)))) : el("p", { class: "muted" }, "–"),
      );
    return el(
      "div",
      { class: "dryrun-diff" },
      group("only_candidate", clip.diff.only_candidate),
      group("only_current", clip.diff.only_current),
      group("both", clip.diff.both.map((p) => p.candidate)),
    );
  }

  function renderResult(body, urls) {
    const out = [];
    if (body.result.same_configuration) out.push(el("p", { class: "notice" }, t("dryrun.same_configuration")));
    if (body.result.current_version == null) out.push(el("p", { class: "notice" }, t("dryrun.no_current")));
    if (dry.requested && body.result.clips.length < dry.requested) {
      out.push(el("p", { class: "notice", dataset: { notice: "fewer_clips" } }, t("dryrun.fewer_clips", { asked: dry.requested, found: body.result.clips.length })));
    }
    const detector = body.result.detector || {};
    const silent = body.result.clips.every((c) => LANES.every((lane) => !c[lane] || c[lane].incidents.length === 0));
    if (silent && LANES.some((lane) => detector[lane] === false)) {
      out.push(el("p", { class: "notice", dataset: { notice: "no_detector" } }, t("dryrun.no_detector")));
    }
    for (const clip of body.result.clips) {
      const videos = LANES.map((lane) => {
        const src = urls && urls[lane] ? urls[lane][clip.index] : null;
        if (!src) return null;
        return el("video", { class: "dryrun-video", src, controls: "", muted: "", preload: "metadata", dataset: { lane } });
      });
      const title =
        clip.origin === "upload"
          ? t("dryrun.clip_upload")
          : clip.case_id != null
            ? t("dryrun.clip_case", { camera: clip.camera || "", at: G.fmtDateTime(clip.started_at), id: clip.case_id })
            : t("dryrun.clip_evidence", { incident: clip.incident_id || clip.sha256 || "" });
      out.push(
        el(
          "article",
          { class: "dryrun-clip", dataset: { index: String(clip.index) } },
          el("h3", {}, `${t("dryrun.clip", { index: clip.index + 1 })} · ${title} · ${clip.duration_s.toFixed(1)} s`),
          timeline(clip, videos),
          diffList(clip),
          el(
            "div",
            { class: "dryrun-videos" },
            ...LANES.map((lane, i) =>
              el("figure", {}, el("figcaption", {}, t(`dryrun.lane_${lane}`)), videos[i] || el("p", { class: "muted" }, t("dryrun.no_video"))),
            ),
          ),
        ),
      );
    }
    $("dryrun-results").replaceChildren(...out);
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("dryrun-edge").addEventListener("change", (e) => loadCameras(e.target.value, ""));
    $("dryrun-camera").addEventListener("change", (e) => (dry.cameraId = e.target.value));
    $("dryrun-start").addEventListener("click", () => start());
    $("dryrun-candidate-clear").addEventListener("click", () => {
      dry.candidate = null;
      renderCandidate();
    });
    const sourceChanged = () => {
      $("dryrun-file").disabled = !$("dryrun-source-file").checked;
      $("dryrun-recent-n").disabled = !$("dryrun-source-recent").checked;
    };
    $("dryrun-source-file").addEventListener("change", sourceChanged);
    $("dryrun-source-recent").addEventListener("change", sourceChanged);
    sourceChanged();
    // fleet.js switches views; it tells us when ours is shown, and the zone editor sends a candidate.
    document.addEventListener("gridwarden:view", (e) => {
      if (e.detail.name === "dryrun") open(e.detail.edgeId || dry.edgeId, e.detail.cameraId || dry.cameraId, e.detail.candidate);
    });
    document.addEventListener("gridwarden:logout", () => {
      dry.runs += 1;
      clearTimeout(dry.poll);
      dry.candidate = null;
      $("dryrun-results").replaceChildren();
      setStatus(null);
    });
    document.addEventListener("gridwarden:language", () => renderCandidate());
  }

  wire();
})();
