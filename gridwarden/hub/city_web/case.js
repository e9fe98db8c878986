// One case, as the map opens it: facts, people's reports (with their photos), history.
"use strict";
(() => {
  const { t, el, api } = City;
  const $ = (id) => document.getElementById(id);
  async function load() {
    const id = Number(new URLSearchParams(location.search).get("id"));
    if (!Number.isInteger(id) || id < 1) return;
    const c = await (await api(`/api/v1/cases/${id}`)).json();
    $("case-title").textContent = t("case.title", { id: c.id });
    $("case-title").dataset.caseId = String(c.id);
    const facts = [["case.state", c.state], ["case.category", c.category], ["case.source", c.source],
      ["case.where", c.report_point_id || `${c.camera} · ${c.zone}`], ["case.detected", new Date(c.detected_at).toLocaleString(City.lang)]];
    $("case-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v, "data-field": k })]));
    const reports = await (await api(`/api/v1/cases/${id}/reports`)).json();
    // A resident's photo is served (re-encoded, without EXIF) by the hub's Open311 media route.
    $("case-reports").replaceChildren(...reports.map((r) => el("div", { class: "report" },
      el("p", { text: `${new Date(r.created_at).toLocaleString(City.lang)} · ${r.source} · ${r.note || ""}${r.contact ? ` · ${r.contact}` : ""}` }),
      ...(r.photo_sha256 ? [el("img", { class: "photo", alt: r.note || "photo", src: `/open311/v2/media/${r.photo_sha256}.jpg` })] : []))));
    $("case-history").replaceChildren(...c.history.map((h) => el("tr", {}, el("td", { text: new Date(h.at).toLocaleString(City.lang) }), el("td", { text: h.actor }), el("td", { text: `${h.from_state || ""} → ${h.to_state}` }), el("td", { text: h.reason || "" }))));
  }
  document.addEventListener("DOMContentLoaded", () => City.init(load));
})();
