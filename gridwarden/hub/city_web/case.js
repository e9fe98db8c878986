// One case, as the map opens it: facts, people's reports (with photos via the console's tickets), history.
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
    $("case-reports").replaceChildren(...reports.map((r) => el("p", {}, `${new Date(r.created_at).toLocaleString(City.lang)} · ${r.source} · ${r.note || ""}`)));
    $("case-history").replaceChildren(...c.history.map((h) => el("tr", {}, el("td", { text: new Date(h.at).toLocaleString(City.lang) }), el("td", { text: h.actor }), el("td", { text: `${h.from_state || ""} → ${h.to_state}` }), el("td", { text: h.reason || "" }))));
  }
  document.addEventListener("DOMContentLoaded", () => City.init(load));
})();
