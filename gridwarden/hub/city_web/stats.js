// The statistics page: filters -> GET /api/v1/statistics; cards, an SVG stacked bar chart, tables, CSV.
"use strict";
(() => {
  const { t, has, el, api } = City;
  const label = (k) => (has(`source.${k}`) ? t(`source.${k}`) : k);
  const $ = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
  const dur = (s) => (s === null ? "–" : s < 120 ? `${s.toFixed(0)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
  function params() {
    const p = new URLSearchParams({ bucket: $("bucket").value, group_by: $("group").value });
    if ($("since").value) p.set("since", new Date(`${$("since").value}T00:00:00`).toISOString());
    if ($("until").value) p.set("until", new Date(`${$("until").value}T23:59:59`).toISOString());
    return p;
  }
  function chart(series) {
    const keys = [...new Set(series.flatMap((s) => Object.keys(s.counts)))].sort();
    const max = Math.max(1, ...series.map((s) => Object.values(s.counts).reduce((a, b) => a + b, 0)));
    const W = Math.max(320, series.length * 28 + 40), H = 180, barW = 20;
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H + 30}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("width", String(W));
    const colours = ["#1f6feb", "#d97706", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#64748b", "#ca8a04"];
    series.forEach((s, i) => {
      let y = H;
      keys.forEach((k, j) => {
        const n = s.counts[k] || 0;
        if (!n) return;
        const h = (n / max) * (H - 10);
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", String(30 + i * 28)); r.setAttribute("y", String(y - h));
        r.setAttribute("width", String(barW)); r.setAttribute("height", String(h));
        r.setAttribute("fill", colours[j % colours.length]);
        r.setAttribute("data-key", k); r.setAttribute("data-count", String(n));
        const title = document.createElementNS(NS, "title"); title.textContent = `${s.bucket} ${k}: ${n}`;
        r.append(title); svg.append(r); y -= h;
      });
      const label = document.createElementNS(NS, "text");
      label.setAttribute("x", String(30 + i * 28)); label.setAttribute("y", String(H + 14));
      label.textContent = s.bucket.slice(5); svg.append(label);
    });
    const top = document.createElementNS(NS, "text");
    top.setAttribute("x", "0"); top.setAttribute("y", "10"); top.textContent = String(max); svg.append(top);
    $("chart").replaceChildren(svg);
    $("legend").replaceChildren(...keys.map((k, j) => el("span", {}, el("span", { class: `swatch c${j % 8}` }), label(k))));
  }
  function table(node, head, rows) {
    node.replaceChildren(el("tr", {}, ...head.map((h) => el("th", { text: h }))), ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: String(c) })))));
  }
  async function load() {
    const data = await (await api(`/api/v1/statistics?${params()}`)).json();
    $("total-cases").textContent = String(data.cases);
    $("solved-share").textContent = pct(data.solved_within_limit.share);
    $("solved-sub").textContent = t("stats.due", { due: data.solved_within_limit.due, ok: data.solved_within_limit.on_time });
    $("ontime-share").textContent = pct(data.on_time_closure.share);
    $("ontime-sub").textContent = t("stats.due", { due: data.on_time_closure.due, ok: data.on_time_closure.on_time });
    chart(data.series);
    table($("stages"), [t("stats.stage"), t("stats.median"), t("stats.n")],
      Object.entries(data.stages).map(([k, v]) => [t(`stage.${k}`), dur(v.median_s), v.cases]));
    const fp = [];
    for (const [by, entries] of Object.entries(data.false_positives)) {
      for (const e of entries) fp.push([t(`group.${by}`), e[by], e.decided, e.rejected, pct(e.rate), Object.entries(e.reasons).map(([r, n]) => `${r} (${n})`).join("; ")]);
    }
    table($("fp"), [t("stats.by"), t("stats.key"), t("stats.decided"), t("stats.rejected"), t("stats.rate"), t("stats.reasons")], fp);
  }
  async function csv(event) {
    const blob = await (await api(`/api/v1/statistics/${event.target.dataset.table}.csv?${params()}`)).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `statistics-${event.target.dataset.table}.csv` });
    document.body.append(a); a.click(); a.remove();
  }
  document.addEventListener("DOMContentLoaded", () => {
    $("apply").addEventListener("click", load);
    document.querySelectorAll("button.csv").forEach((b) => b.addEventListener("click", csv));
    City.init(load);
  });
})();
