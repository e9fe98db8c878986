// Gridwarden console: the live view, a wall of every camera's latest picture with its zones
// drawn, open cases counted, filtered by area (site) or edge; a tile opens the camera's cases for review.
//
// Pictures are the snapshots edges upload every few minutes (the zone editor asks for a fresh
// one); they are read with the console's media ticket and reloaded when a newer one exists.
"use strict";

(() => {
  const G = window.Gridwarden;
  const { api, t, el, toast } = G;
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 10000;

  const wall = { data: null, timer: null, active: false };

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  const points = (poly) => poly.map(([x, y]) => `${x},${y}`).join(" ");

  function overlay(cam) {
    // Normalised coordinates: a 1x1 viewBox stretched over the picture.
    const root = svg("svg", { class: "wall-zones", viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
    for (const z of cam.zones) {
      root.append(svg("polygon", { points: points(z.polygon), class: "wall-zone", "data-zone": z.id }));
      for (const m of z.masks || []) root.append(svg("polygon", { points: points(m), class: "wall-mask" }));
    }
    return root;
  }

  function tile(cam) {
    const stamp = cam.picture_at ? `&t=${Date.parse(cam.picture_at)}` : "";
    const picture = cam.has_picture && G.mediaUrl(`camera/${encodeURIComponent(cam.edge_id)}/${encodeURIComponent(cam.camera_id)}`);
    const stage = el("div", { class: `wall-stage${picture ? "" : " no-picture"}` });
    if (picture) stage.append(el("img", { src: picture + stamp, alt: cam.camera_id, loading: "lazy" }));
    else stage.append(el("span", { class: "muted" }, t("wall.no_picture")));
    stage.append(overlay(cam));
    const stateKey = cam.state ? `camera_state.${cam.state}` : "camera_state.unknown";
    const button = el(
      "button",
      { type: "button", class: "wall-tile", title: t("wall.open_cases_title", { camera: cam.camera_id }), dataset: { edgeId: cam.edge_id, cameraId: cam.camera_id } },
      stage,
      el(
        "span",
        { class: "wall-caption" },
        el("strong", {}, cam.camera_id),
        el("span", { class: "muted small" }, `${cam.edge_id} · ${t(stateKey)}`),
        el("span", { class: `wall-count${cam.needs_decision ? " hot" : ""}` }, cam.needs_decision ? t("wall.needs_decision", { count: cam.needs_decision }) : t(G.pluralKey("wall.open", cam.open_cases), { count: cam.open_cases })),
      ),
    );
    button.addEventListener("click", async () => {
      G.showView("review");
      await G.openCamera(cam.camera_id).catch((err) => toast(err.message, "error"));
    });
    return el("li", {}, button);
  }

  function render() {
    const data = wall.data;
    if (!data) return;
    const refill = (select, values) => {
      const chosen = select.value;
      select.replaceChildren(el("option", { value: "" }, t("filters.any")), ...values.map((v) => el("option", { value: v }, v)));
      select.value = values.includes(chosen) ? chosen : "";
      return select.value;
    };
    // An area (site) narrows the edges offered; an edge narrows the cameras.
    const site = refill($("wall-site"), data.sites);
    const edges = data.edges.filter((e) => !site || data.cameras.some((c) => c.edge_id === e && c.site === site));
    const edge = refill($("wall-edge"), edges);
    const shown = data.cameras.filter((c) => (!site || c.site === site) && (!edge || c.edge_id === edge));
    $("wall-grid").replaceChildren(...shown.map(tile));
    $("wall-empty").hidden = shown.length > 0;
    $("wall-updated").textContent = t("wall.updated", { at: G.fmtDateTime(data.as_of) });
  }

  async function load() {
    try {
      await G.ensureMedia();
      wall.data = await api("/console/live");
      render();
    } catch (err) {
      $("wall-updated").textContent = err.message;
    }
  }

  function stop() {
    wall.active = false;
    clearInterval(wall.timer);
  }

  document.addEventListener("gridwarden:view", (e) => {
    if (e.detail.name !== "wall") return stop();
    wall.active = true;
    load();
    clearInterval(wall.timer);
    wall.timer = setInterval(load, REFRESH_MS);
  });
  document.addEventListener("gridwarden:logout", stop);
  document.addEventListener("gridwarden:language", () => wall.active && render());
  $("wall-edge").addEventListener("change", render);
  $("wall-site").addEventListener("change", render);
})();
