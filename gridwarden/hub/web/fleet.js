// Gridwarden console: the fleet view and the zone editor (integrators and admins).
//
// Plain JavaScript on top of app.js (window.Gridwarden gives its API helper, i18n and toasts).
// The editor edits the edge's configuration as JSON (the hub parses and renders the YAML:
// GET/PUT /edges/{id}/config/document) and draws zones as SVG polygons over the camera's
// latest snapshot. The hub validates on save; its 422 problems are listed beside the form.
"use strict";

(() => {
  const G = window.Gridwarden;
  const { api, t, el, toast } = G;
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const FLEET_REFRESH_MS = 5000;
  // Rule types, their fields and what a new rule starts with: the hub's rule registry
  // (GET /rule-types), loaded when the editor opens, never copied here.
  const ruleTypes = () => view.ruleTypes || [];
  const ruleType = (type) => ruleTypes().find((r) => r.type === type);
  const newRule = (type) => ({ type, ...structuredClone((ruleType(type) || {}).new_rule || {}) });
  const hasField = (rule, name) => ((ruleType(rule.type) || {}).fields || []).some((f) => f.name === name);
  const COMMON_CLASSES = ["vehicle", "person", "any"];
  // What an empty field means (the edge's defaults), shown as the field's placeholder.
  const FIELD_DEFAULTS = { min_size: 0, cooldown_s: 0, end_grace_s: 5, min_static_s: 10, coverage: { occupied_space: 0.3, static_object: 0.05 } };
  const PLACEHOLDER = { w: 1600, h: 900 }; // drawing area when a camera has no snapshot yet
  const CLOSE_DISTANCE_PX = 12; // a click this close to the first vertex closes the polygon

  const view = {
    me: null,
    current: "review",
    fleet: null,
    fleetTimer: null,
    edges: [], // EdgeView objects, for the editor's edge menu
    edgeId: "",
    cameraId: "",
    doc: null, // {edge_id, version, document}
    missing: null, // why there is nothing to edit, as a message key
    size: { ...PLACEHOLDER },
    selectedZone: -1,
    selectedVertex: null, // {ring: -1 for the polygon or the mask index, index}
    drawing: null, // {kind: "zone"|"mask", points: [[x, y], ...]} in normalised coordinates
    drag: null,
    dirty: false,
    loads: 0, // bumped by every load: a slower earlier load must not overwrite a later choice
  };

  // ------------------------------------------------------------------ views

  const mayConfigure = () => Boolean(view.me && view.me.permissions.includes("config:write"));

  function show(name, detail) {
    if (!mayConfigure() && name !== "wall") name = "review"; // the live view is for every reviewer
    view.current = name;
    $("review").hidden = name !== "review";
    $("wall").hidden = name !== "wall";
    $("fleet").hidden = name !== "fleet";
    $("zones").hidden = name !== "zones";
    $("dryrun").hidden = name !== "dryrun";
    // dryrun.js loads its view on this event (detail: edge, camera and the candidate, if any).
    document.dispatchEvent(new CustomEvent("gridwarden:view", { detail: { name, ...(detail || {}) } }));
    for (const b of document.querySelectorAll("#views-nav [data-view]")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === name));
    }
    clearInterval(view.fleetTimer);
    if (name === "fleet") {
      loadFleet();
      view.fleetTimer = setInterval(loadFleet, FLEET_REFRESH_MS);
    }
    if (name === "zones") openEditor(view.edgeId, view.cameraId);
  }

  // ------------------------------------------------------------------ fleet

  const fmtNumber = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

  async function loadFleet() {
    try {
      view.fleet = await api("/console/fleet");
      renderFleet();
    } catch (err) {
      $("fleet-updated").textContent = t("fleet.failed", { message: err.message });
    }
  }

  function renderFleet() {
    const fleet = view.fleet;
    if (!fleet) return;
    const rows = [];
    let offline = 0;
    let cameras = 0;
    for (const edge of fleet.edges) {
      const edgeDown = !edge.online;
      if (edgeDown) offline += 1;
      rows.push(
        el(
          "tr",
          { class: `edge-row${edgeDown ? " offline" : ""}`, dataset: { edgeId: edge.edge_id, online: String(edge.online) } },
          el(
            "th",
            { colspan: "6", scope: "rowgroup" },
            `${edge.edge_id} · ${edge.site} · `,
            el("span", { class: `status ${edge.online ? "ok" : "bad"}` }, t(edge.online ? "fleet.online" : "fleet.offline")),
          ),
          el("td", {}, edge.config_version || "–"),
          el("td", {}, edge.last_incident_at ? G.fmtAge(edge.last_incident_at) : "–"),
          el("td", {}),
        ),
      );
      for (const cam of edge.cameras) {
        cameras += 1;
        const down = edgeDown || cam.state !== "online";
        if (down && !edgeDown) offline += 1;
        rows.push(
          el(
            "tr",
            { class: `camera-row${down ? " offline" : ""}`, dataset: { edgeId: edge.edge_id, cameraId: cam.camera_id, state: cam.state } },
            el("td", {}, cam.camera_id, cam.last_error ? el("span", { class: "muted small", title: cam.last_error }, ` ${cam.last_error}`) : null),
            el("td", {}, el("span", { class: `status ${cam.state === "online" ? "ok" : "bad"}` }, t(`camera_state.${cam.state}`))),
            el("td", {}, fmtNumber(cam.input_fps, 1)),
            el("td", {}, fmtNumber(cam.analysed_fps, 1)),
            el("td", {}, cam.lag_s === null || cam.lag_s === undefined ? "–" : `${fmtNumber(cam.lag_s, 1)} s`),
            el("td", {}, String(cam.reconnects)),
            el("td", {}, edge.config_version || "–"),
            el("td", {}, cam.last_incident_at ? el("time", { datetime: cam.last_incident_at, title: G.fmtDateTime(cam.last_incident_at) }, G.fmtAge(cam.last_incident_at)) : "–"),
            el("td", {}, el("button", { type: "button", class: "link", onclick: () => { view.edgeId = edge.edge_id; view.cameraId = cam.camera_id; show("zones"); } }, t("fleet.edit_zones"))),
          ),
        );
      }
    }
    $("fleet-body").replaceChildren(...rows);
    $("fleet-empty").hidden = fleet.edges.length > 0;
    $("fleet-table").hidden = fleet.edges.length === 0;
    $("fleet-summary").textContent = t("fleet.summary", { edges: fleet.edges.length, cameras, offline });
    $("fleet-updated").textContent = t("fleet.updated", { at: G.fmtDateTime(fleet.as_of) });
  }

  // ------------------------------------------------------------------ zone editor: loading

  function setMessage(key, params) {
    const box = $("zones-message");
    box.hidden = !key;
    box.textContent = key ? t(key, params) : "";
  }

  function showProblems(message, problems) {
    const box = $("zones-problems");
    box.hidden = !message;
    box.replaceChildren();
    if (!message) return;
    box.append(el("strong", {}, message));
    if (problems && problems.length) box.append(el("ul", {}, ...problems.map((p) => el("li", {}, p))));
    box.scrollIntoView({ block: "nearest" });
  }

  async function openEditor(edgeId, cameraId) {
    try {
      if (!view.ruleTypes) view.ruleTypes = await api("/rule-types");
      view.edges = await api("/edges");
    } catch (err) {
      setMessage("zones.load_failed", { message: err.message });
      return;
    }
    const edgeIds = view.edges.map((e) => e.edge_id);
    if (!edgeIds.includes(edgeId)) edgeId = edgeIds[0] || "";
    $("zones-edge").replaceChildren(...edgeIds.map((id) => el("option", { value: id }, id)));
    $("zones-edge").value = edgeId;
    await loadEdge(edgeId, cameraId);
  }

  async function loadEdge(edgeId, cameraId) {
    const load = ++view.loads;
    view.edgeId = edgeId;
    view.doc = null;
    view.missing = null;
    view.drawing = null;
    view.dirty = false;
    showProblems(null);
    if (!edgeId) {
      view.missing = "zones.no_edges";
    } else {
      try {
        const doc = await api(`/edges/${encodeURIComponent(edgeId)}/config/document`);
        if (load !== view.loads) return;
        view.doc = doc;
      } catch (err) {
        if (load !== view.loads) return;
        if (err.status === 404) view.missing = "zones.no_config";
        else {
          setMessage("zones.load_failed", { message: err.message });
          return;
        }
      }
    }
    const cams = view.doc ? (view.doc.document.cameras || []).map((c) => c.id) : [];
    if (!cams.includes(cameraId)) cameraId = cams[0] || "";
    $("zones-camera").replaceChildren(...cams.map((id) => el("option", { value: id }, id)));
    $("zones-camera").value = cameraId;
    await loadCamera(cameraId);
  }

  async function loadCamera(cameraId) {
    const load = ++view.loads;
    view.cameraId = cameraId;
    view.selectedZone = -1;
    view.selectedVertex = null;
    view.drawing = null;
    setMessage(view.missing, { edge: view.edgeId });
    $("zones-body").hidden = Boolean(view.missing) || !cameraId;
    $("zones-version").textContent = view.doc ? t("zones.version", { version: view.doc.version }) : "";
    const img = $("zones-snapshot");
    img.removeAttribute("src");
    view.size = { ...PLACEHOLDER };
    $("zones-stage").classList.add("no-snapshot");
    if (view.doc && cameraId) {
      // Ask the edge for a fresh picture (it arrives in a second or two; reopening shows it).
      api(`/cameras/${encodeURIComponent(view.edgeId)}/${encodeURIComponent(cameraId)}/snapshot/request`, { method: "POST" }).catch(() => {});
      try {
        const signed = await api(`/cameras/${encodeURIComponent(view.edgeId)}/${encodeURIComponent(cameraId)}/snapshot/url`, { method: "POST" });
        if (load !== view.loads) return;
        await new Promise((resolve) => {
          img.onload = () => {
            view.size = { w: img.naturalWidth, h: img.naturalHeight };
            $("zones-stage").classList.remove("no-snapshot");
            resolve();
          };
          img.onerror = () => resolve();
          img.src = signed.url;
        });
        if (load !== view.loads) return;
        $("zones-snapshot").title = t("zones.snapshot_taken", { at: G.fmtDateTime(signed.taken_at) });
      } catch (err) {
        if (load !== view.loads) return;
        if (err.status !== 404) toast(err.message, "error");
        setMessage("zones.no_snapshot");
      }
    }
    if (view.doc && cameraId && zones().length) view.selectedZone = 0;
    render();
  }

  // ------------------------------------------------------------------ zone editor: model

  function camera() {
    if (!view.doc) return null;
    return (view.doc.document.cameras || []).find((c) => c.id === view.cameraId) || null;
  }

  function zones() {
    const cam = camera();
    if (!cam) return [];
    if (!Array.isArray(cam.zones)) cam.zones = [];
    return cam.zones;
  }

  const zone = () => zones()[view.selectedZone] || null;

  function ring(z, which) {
    return which === -1 ? z.polygon : z.masks[which];
  }

  function changed() {
    view.dirty = true;
    showProblems(null);
    render();
  }

  // A field of the form changed: redraw the picture and the list but not the form itself, so the
  // field the user moves on to is not replaced under the cursor.
  function edited() {
    view.dirty = true;
    showProblems(null);
    renderSvg();
    renderZoneList();
  }

  function uniqueZoneId() {
    const taken = new Set(zones().map((z) => z.id));
    for (let n = zones().length + 1; ; n += 1) if (!taken.has(`zone-${n}`)) return `zone-${n}`;
  }

  const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

  function toNorm(event) {
    const rect = $("zones-svg").getBoundingClientRect();
    return [round((event.clientX - rect.left) / rect.width), round((event.clientY - rect.top) / rect.height)];
  }

  function finishDrawing() {
    const d = view.drawing;
    if (!d || d.points.length < 3) {
      toast(t("zones.need_three"), "error");
      return;
    }
    if (d.kind === "zone") {
      zones().push({ id: uniqueZoneId(), polygon: d.points, anchor: "bottom_center", rules: [newRule(ruleTypes()[0].type)] });
      view.selectedZone = zones().length - 1;
    } else {
      const z = zone();
      if (!Array.isArray(z.masks)) z.masks = [];
      z.masks.push(d.points);
    }
    view.drawing = null;
    changed();
  }

  function startDrawing(kind) {
    if (!camera()) return;
    if (kind === "mask" && !zone()) return toast(t("zones.select_zone_first"), "error");
    view.drawing = { kind, points: [] };
    view.selectedVertex = null;
    render();
  }

  // ------------------------------------------------------------------ zone editor: drawing

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  const px = (points) => points.map(([x, y]) => `${x * view.size.w},${y * view.size.h}`).join(" ");

  function renderSvg() {
    const root = $("zones-svg");
    const { w, h } = view.size;
    root.setAttribute("viewBox", `0 0 ${w} ${h}`);
    $("zones-stage").style.aspectRatio = `${w} / ${h}`;
    const r = Math.max(w, h) * 0.007;
    const nodes = [];
    zones().forEach((z, zi) => {
      const selected = zi === view.selectedZone;
      const group = svg("g", { class: `zone${selected ? " selected" : ""}`, "data-zone": z.id });
      const poly = svg("polygon", { points: px(z.polygon || []), class: "zone-poly" });
      poly.addEventListener("pointerdown", (e) => {
        if (view.drawing) return;
        e.stopPropagation();
        view.selectedZone = zi;
        view.selectedVertex = null;
        render();
      });
      group.append(poly);
      (z.masks || []).forEach((m) => group.append(svg("polygon", { points: px(m), class: "mask-poly" })));
      const label = svg("text", { x: (z.polygon[0][0] * w).toFixed(1), y: (z.polygon[0][1] * h - r * 1.6).toFixed(1), class: "zone-label", "font-size": String(r * 3) });
      label.textContent = z.id;
      group.append(label);
      if (selected) {
        const rings = [[-1, z.polygon], ...(z.masks || []).map((m, mi) => [mi, m])];
        for (const [which, points] of rings) {
          points.forEach(([x, y], vi) => {
            const sel = view.selectedVertex && view.selectedVertex.ring === which && view.selectedVertex.index === vi;
            const handle = svg("circle", { cx: x * w, cy: y * h, r, class: `vertex${which === -1 ? "" : " mask"}${sel ? " selected" : ""}`, "data-ring": String(which), "data-index": String(vi) });
            handle.addEventListener("pointerdown", (e) => {
              if (view.drawing) return;
              e.stopPropagation();
              e.preventDefault();
              view.selectedVertex = { ring: which, index: vi };
              view.drag = { ring: which, index: vi, pointerId: e.pointerId };
              root.setPointerCapture(e.pointerId);
              render();
            });
            group.append(handle);
          });
        }
      }
      nodes.push(group);
    });
    if (view.drawing) {
      const d = view.drawing;
      nodes.push(svg("polyline", { points: px(d.points), class: `drawing ${d.kind}` }));
      d.points.forEach(([x, y], i) => nodes.push(svg("circle", { cx: x * w, cy: y * h, r, class: `vertex drawing${i === 0 ? " first" : ""}` })));
    }
    root.replaceChildren(...nodes);
    root.classList.toggle("is-drawing", Boolean(view.drawing));
  }

  function onSvgPointerDown(event) {
    if (!view.drawing) {
      view.selectedVertex = null;
      render();
      return;
    }
    const point = toNorm(event);
    const d = view.drawing;
    if (d.points.length >= 3) {
      const rect = $("zones-svg").getBoundingClientRect();
      const [fx, fy] = d.points[0];
      const dist = Math.hypot((point[0] - fx) * rect.width, (point[1] - fy) * rect.height);
      if (dist <= CLOSE_DISTANCE_PX) return finishDrawing();
    }
    d.points.push(point);
    render();
  }

  function onSvgPointerMove(event) {
    if (!view.drag) return;
    const z = zone();
    if (!z) return;
    ring(z, view.drag.ring)[view.drag.index] = toNorm(event);
    view.dirty = true;
    renderSvg();
  }

  function onSvgPointerUp() {
    if (!view.drag) return;
    view.drag = null;
    changed();
  }

  function onKey(event) {
    if ($("zones").hidden) return;
    const tag = event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (event.key === "Enter" && view.drawing) finishDrawing();
    else if (event.key === "Escape" && view.drawing) {
      view.drawing = null;
      render();
    } else if ((event.key === "Delete" || event.key === "Backspace") && view.selectedVertex && zone()) {
      const points = ring(zone(), view.selectedVertex.ring);
      if (points.length <= 3) {
        toast(t("zones.min_vertices"), "error");
      } else {
        points.splice(view.selectedVertex.index, 1);
        view.selectedVertex = null;
        changed();
      }
    } else return;
    event.preventDefault();
  }

  // ------------------------------------------------------------------ zone editor: form

  function classOptions() {
    const groups = Object.keys((view.doc && view.doc.document.class_groups) || {});
    return [...new Set([...COMMON_CLASSES, ...groups])];
  }

  // Rules that look for detected objects need the edge's detector (a ``model`` section); the
  // class-agnostic static-object rule works without one.
  const needsDetector = (rule) => (ruleType(rule.type) || { needs_detector: true }).needs_detector;

  function ruleEditor(z, rule, ri) {
    const options = classOptions();
    if (!Array.isArray(rule.classes)) rule.classes = [...(newRule(rule.type).classes || ["any"])];
    const extra = rule.classes.filter((c) => !options.includes(c));
    const noDetector = needsDetector(rule) && view.doc && !view.doc.document.model;
    const update = () => edited();
    const field = (key, labelKey, input) => el("label", { class: `rule-${key}` }, el("span", {}, t(labelKey)), input);
    const numberInput = (key, step) =>
      el("input", {
        type: "number",
        step,
        min: "0",
        value: rule[key] ?? "",
        placeholder: String((typeof FIELD_DEFAULTS[key] === "object" ? FIELD_DEFAULTS[key][rule.type] : FIELD_DEFAULTS[key]) ?? ""),
        name: key,
        onchange: (e) => {
          if (e.target.value === "") delete rule[key];
          else rule[key] = Number(e.target.value);
          update();
        },
      });
    const windows = rule.schedule ? (Array.isArray(rule.schedule) ? rule.schedule : rule.schedule.windows || []) : [];
    const box = el(
      "fieldset",
      { class: "rule", dataset: { rule: String(ri) } },
      el("legend", {}, t("zones.rule_n", { n: ri + 1 })),
      field(
        "type",
        "zones.rule_type",
        (() => {
          const select = el("select", { name: "type", onchange: (e) => {
            const type = e.target.value;
            const keep = { classes: rule.classes, dwell_s: rule.dwell_s, schedule: rule.schedule };
            for (const k of Object.keys(rule)) delete rule[k];
            Object.assign(rule, { ...newRule(type), ...Object.fromEntries(Object.entries(keep).filter(([, v]) => v !== undefined)) });
            changed(); // the fields differ per rule type
          } }, ...ruleTypes().map((r) => el("option", { value: r.type }, t(`rule.${r.type}`))));
          select.value = rule.type;
          return select;
        })(),
      ),
      noDetector ? el("p", { class: "warning small", role: "note" }, t("zones.no_detector_warning")) : null,
      !needsDetector(rule) ? el("p", { class: "muted small" }, t("zones.class_agnostic")) : el(
        "div",
        { class: "classes" },
        el("span", {}, t("zones.classes")),
        ...options.map((name) =>
          el(
            "label",
            { class: "check" },
            el("input", {
              type: "checkbox",
              value: name,
              ...(rule.classes.includes(name) ? { checked: "" } : {}),
              onchange: (e) => {
                rule.classes = e.target.checked ? [...rule.classes, name] : rule.classes.filter((c) => c !== name);
                update();
              },
            }),
            el("span", {}, name),
          ),
        ),
        el("input", {
          name: "extra_classes",
          placeholder: t("zones.more_classes"),
          value: extra.join(", "),
          onchange: (e) => {
            const typed = e.target.value.split(",").map((s) => s.trim()).filter(Boolean);
            rule.classes = [...rule.classes.filter((c) => options.includes(c)), ...typed];
            update();
          },
        }),
      ),
      field("dwell", "zones.dwell_s", numberInput("dwell_s", "1")),
      hasField(rule, "coverage") ? field("coverage", "zones.coverage", numberInput("coverage", "0.01")) : null,
      hasField(rule, "min_static_s") ? field("min_static", "zones.min_static_s", numberInput("min_static_s", "1")) : null,
      field("min_size", "zones.min_size", numberInput("min_size", "0.01")),
      field("cooldown", "zones.cooldown_s", numberInput("cooldown_s", "1")),
      field("end_grace", "zones.end_grace_s", numberInput("end_grace_s", "1")),
      field(
        "schedule",
        "zones.schedule",
        el("input", {
          name: "schedule",
          placeholder: "07:00-20:00, 22:00-24:00",
          value: windows.join(", "),
          onchange: (e) => {
            const list = e.target.value.split(",").map((s) => s.trim()).filter(Boolean);
            if (!list.length) delete rule.schedule;
            else if (rule.schedule && !Array.isArray(rule.schedule)) rule.schedule.windows = list;
            else rule.schedule = list;
            update();
          },
        }),
      ),
      z.rules.length > 1
        ? el("button", { type: "button", class: "link", onclick: () => { z.rules.splice(ri, 1); changed(); } }, t("zones.remove_rule"))
        : null,
    );
    return box;
  }

  function renderZoneList() {
    // Unchanged list: keep its buttons. A field's change event fires on the mousedown that moves
    // to another zone's button; replacing the buttons then would swallow that click.
    const signature = JSON.stringify([view.selectedZone, zones().map((z) => [z.id, z.rules.map((r) => r.type)])]);
    if ($("zones-list").dataset.signature === signature) return;
    $("zones-list").dataset.signature = signature;
    $("zones-list").replaceChildren(
      ...zones().map((z, zi) =>
        el(
          "li",
          { class: zi === view.selectedZone ? "selected" : "", dataset: { zone: z.id } },
          el("button", { type: "button", class: "link", onclick: () => { view.selectedZone = zi; view.selectedVertex = null; render(); } }, z.id),
          el("span", { class: "muted small" }, z.rules.map((r) => t(`rule.${r.type}`)).join(", ")),
        ),
      ),
    );
  }

  // Masks: listed under the zone, each selectable (its vertices can then be dragged or deleted
  // like the zone's) and deletable.
  function renderMasks(z) {
    const masks = z.masks || [];
    $("zone-masks").replaceChildren(
      el("span", {}, t("zones.masks", { count: masks.length })),
      ...masks.map((m, mi) =>
        el(
          "span",
          { class: "mask-item", dataset: { mask: String(mi) } },
          el("button", { type: "button", class: "link", onclick: () => { view.selectedVertex = { ring: mi, index: 0 }; render(); } }, t("zones.mask_n", { n: mi + 1, vertices: m.length })),
          el("button", { type: "button", class: "link danger-link", "aria-label": t("zones.delete_mask_n", { n: mi + 1 }), onclick: () => { z.masks.splice(mi, 1); if (!z.masks.length) delete z.masks; view.selectedVertex = null; changed(); } }, t("zones.delete_mask")),
        ),
      ),
    );
  }

  function renderPanel() {
    renderZoneList();
    const z = zone();
    $("zone-form").hidden = !z;
    if (z) {
      $("zone-id").value = z.id;
      $("zone-anchor").value = z.anchor || "bottom_center";
      renderMasks(z);
      $("zone-rules").replaceChildren(...z.rules.map((rule, ri) => ruleEditor(z, rule, ri)));
    }
    $("zones-new-mask").disabled = !z;
    let hint = "zones.hint_edit";
    if (view.drawing) hint = view.drawing.kind === "zone" ? "zones.hint_draw" : "zones.hint_mask";
    $("zones-hint").textContent = t(hint);
    $("zones-save").disabled = !view.doc;
    $("zones-dryrun").disabled = !view.doc;
  }

  function render() {
    if (!view.doc || !view.cameraId) return;
    renderSvg();
    renderPanel();
  }

  // ------------------------------------------------------------------ zone editor: save

  async function save() {
    if (!view.doc) return;
    if (view.drawing) return toast(t("zones.finish_drawing"), "error");
    showProblems(null);
    $("zones-save").disabled = true;
    try {
      const result = await api(`/edges/${encodeURIComponent(view.edgeId)}/config/document`, {
        method: "PUT",
        body: { document: view.doc.document, comment: $("zones-comment").value.trim(), base_version: view.doc.version },
      });
      view.doc = { edge_id: result.edge_id, version: result.version, document: result.document };
      view.dirty = false;
      $("zones-comment").value = "";
      $("zones-version").textContent = t("zones.version", { version: result.version });
      const key = result.published ? "zones.saved_published" : "zones.saved_not_published";
      toast(t(key, { version: result.version, why: result.publish_error || "" }), result.published ? "info" : "error");
      $("zones-save").dataset.savedVersion = String(result.version);
    } catch (err) {
      const detail = err.detail || {};
      if (err.status === 422 && detail.problems) showProblems(t("zones.refused", { count: detail.problems.length }), detail.problems);
      else if (err.status === 409) showProblems(t("zones.stale"));
      else showProblems(t("zones.save_failed", { message: err.message }));
    } finally {
      $("zones-save").disabled = !view.doc;
      render();
    }
  }

  // ------------------------------------------------------------------ zone editor: dry run

  /** Opens the dry-run view with the document being edited as the candidate (JSON is valid YAML). */
  function dryRun() {
    if (!view.doc) return;
    if (view.drawing) return toast(t("zones.finish_drawing"), "error");
    const document_ = view.doc.document;
    const candidate = {
      edgeId: view.edgeId,
      baseVersion: view.doc.version,
      yaml: JSON.stringify(document_, null, 2),
      cameras: (document_.cameras || []).map((c) => c.id),
    };
    show("dryrun", { edgeId: view.edgeId, cameraId: view.cameraId, candidate });
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    for (const b of document.querySelectorAll("#views-nav [data-view]")) b.addEventListener("click", () => show(b.dataset.view));
    $("zones-edge").addEventListener("change", (e) => loadEdge(e.target.value, ""));
    $("zones-camera").addEventListener("change", (e) => loadCamera(e.target.value));
    $("zones-new").addEventListener("click", () => startDrawing("zone"));
    $("zones-new-mask").addEventListener("click", () => startDrawing("mask"));
    $("zones-save").addEventListener("click", () => save());
    $("zones-dryrun").addEventListener("click", () => dryRun());
    const root = $("zones-svg");
    root.addEventListener("pointerdown", onSvgPointerDown);
    root.addEventListener("pointermove", onSvgPointerMove);
    root.addEventListener("pointerup", onSvgPointerUp);
    root.addEventListener("pointercancel", onSvgPointerUp);
    $("zone-id").addEventListener("change", (e) => {
      const z = zone();
      if (z) z.id = e.target.value.trim();
      edited();
    });
    $("zone-anchor").addEventListener("change", (e) => {
      const z = zone();
      if (z) z.anchor = e.target.value;
      edited();
    });
    $("zone-add-rule").addEventListener("click", () => {
      const z = zone();
      if (!z) return;
      z.rules.push(newRule("occupied_space"));
      changed();
    });
    $("zone-delete").addEventListener("click", () => {
      if (!zone()) return;
      zones().splice(view.selectedZone, 1);
      view.selectedZone = zones().length ? 0 : -1;
      view.selectedVertex = null;
      changed();
    });
    $("zone-form").addEventListener("submit", (e) => e.preventDefault());
    document.addEventListener("keydown", onKey);
    document.addEventListener("gridwarden:start", (e) => {
      view.me = e.detail;
      $("views-nav").hidden = false;
      for (const b of document.querySelectorAll('#views-nav [data-needs="config"]')) b.hidden = !mayConfigure();
      show("review");
    });
    document.addEventListener("gridwarden:logout", () => {
      view.me = null;
      clearInterval(view.fleetTimer);
      $("views-nav").hidden = true;
      show("review");
    });
    document.addEventListener("gridwarden:language", () => {
      if (view.current === "fleet") renderFleet();
      if (view.current === "zones") {
        setMessage(view.missing, { edge: view.edgeId });
        render();
      }
    });
  }

  wire();
  G.showView = show; // wall.js opens the review queue on a camera
})();
