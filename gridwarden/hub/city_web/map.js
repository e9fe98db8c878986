// The one map: cameras (online/offline), QR points, open cases coloured by SLA, officers, areas.
// Leaflet draws with SVG (no WebGL). Basemap: the district's MBTiles tiles when configured, else a
// plain background; a scale bar either way. Each case opens case.html.
"use strict";
(() => {
  const { t, el, api } = City;
  const $ = (id) => document.getElementById(id);
  let map = null;
  let layer = null;
  const SLA = { ok: "#16a34a", due_soon: "#f59e0b", breached: "#dc2626" };
  function caseLink(c) { return `case.html?id=${c.id}`; }
  function legend() {
    const item = (cls, key) => el("span", {}, el("span", { class: `swatch ${cls}` }), t(key));
    $("map-legend").replaceChildren(item("sla-ok", "sla.ok"), item("sla-due_soon", "sla.due_soon"), item("sla-breached", "sla.breached"),
      item("cam-online", "cam.online"), item("cam-offline", "cam.offline"), item("point", "map.points"), item("officer", "map.officers"));
  }
  async function load() {
    legend();
    const data = await (await api("/api/v1/map")).json();
    if (typeof L === "undefined") { $("map-error").hidden = false; $("map-error").textContent = t("map.nolib"); return; }
    if (!map) {
      map = L.map("map", { preferCanvas: false, attributionControl: false }).setView([31.23, 121.47], 14);
      if (data.basemap.tiles) L.tileLayer(data.basemap.tiles, { maxZoom: 19 }).addTo(map);
      L.control.scale({ metric: true, imperial: false }).addTo(map);
    }
    if (layer) layer.remove();
    layer = L.featureGroup().addTo(map);
    if (data.outline) {
      L.geoJSON(data.outline, { style: { color: "#94a3b8", weight: 2, fill: false, className: "outline" } })
        .eachLayer((l) => { if (l.feature.properties && l.feature.properties.name) l.bindTooltip(l.feature.properties.name); })
        .addTo(layer);
    }
    for (const a of data.areas) {
      L.geoJSON(a.geometry, { style: { color: "#64748b", weight: 1, fillOpacity: 0.05 } }).bindTooltip(a.name).addTo(layer);
    }
    for (const p of data.points) {
      L.circleMarker([p.lat, p.lon], { radius: 4, color: "#2563eb", fillOpacity: 0.8, className: "qr-point" })
        .bindTooltip(`${p.id} ${p.description}`).addTo(layer);
    }
    for (const c of data.cameras.filter((c) => c.lat !== null)) {
      L.circleMarker([c.lat, c.lon], { radius: 7, color: c.online ? "#0f766e" : "#9ca3af", fillOpacity: 0.9, className: `camera camera-${c.online ? "online" : "offline"}` })
        .bindTooltip(`${c.camera_id} (${t(c.online ? "cam.online" : "cam.offline")})`).addTo(layer);
    }
    for (const o of data.officers.filter((o) => o.lat !== null)) {
      L.circleMarker([o.lat, o.lon], { radius: 6, color: "#7c3aed", fillOpacity: 0.9, className: "officer" }).bindTooltip(`${o.name} · ${o.state}`).addTo(layer);
    }
    for (const c of data.cases.filter((c) => c.lat !== null)) {
      const marker = L.circleMarker([c.lat, c.lon], { radius: 9, color: SLA[c.sla], fillColor: SLA[c.sla], fillOpacity: 0.7, className: `case case-${c.id} sla-${c.sla}` });
      const popup = el("div", {}, el("strong", { text: `#${c.id} · ${c.category}` }), el("br"), el("span", { text: `${c.state} · ${t(`sla.${c.sla}`)}` }), el("br"),
        el("a", { href: caseLink(c), class: "open-case", "data-case-id": String(c.id), text: t("map.open") }));
      marker.bindPopup(popup).addTo(layer);
    }
    $("case-list").replaceChildren(...data.cases.map((c) => el("li", {}, el("span", { class: `swatch sla-${c.sla}` }),
      el("a", { href: caseLink(c), text: `#${c.id} ${c.category} ${c.state}` }), c.lat === null ? ` (${t("map.unplaced")})` : "")));
    $("camera-list").replaceChildren(...data.cameras.map((c) => el("li", { "data-camera": c.camera_id }, el("span", { class: `swatch cam-${c.online ? "online" : "offline"}` }),
      `${c.camera_id}${c.lat === null ? ` (${t("map.unplaced")})` : ""}`)));
    $("point-count").textContent = String(data.points.length);
    if (layer.getLayers().length) map.fitBounds(layer.getBounds().pad(0.2), { maxZoom: 17 });
  }
  document.addEventListener("DOMContentLoaded", () => City.init(load));
})();
