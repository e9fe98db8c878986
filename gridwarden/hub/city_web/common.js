// Shared by the city pages: language, the console's session token, sign-in, API calls.
// The token is the console's (sessionStorage, same key), so a signed-in console user opens these
// pages without signing in again; otherwise the page shows a sign-in form that uses the console's
// log-in endpoint.
"use strict";
const City = (() => {
  const TOKEN_KEY = "gridwarden.console.token";
  const LANG_KEY = "gridwarden.console.language";
  const TEXT = {
    "zh-CN": {
      "nav.stats": "统计", "nav.map": "一张图", "nav.console": "审核台", "lang": "English", "logout": "退出",
      "login.title": "登录", "login.user": "用户名", "login.password": "密码", "login.submit": "登录",
      "login.failed": "用户名或密码错误。",
      "stats.title": "案件统计", "stats.cases": "案件数", "stats.solved": "限时解决率", "stats.ontime": "按期结案率",
      "stats.due": "应结 {due} · 按期 {ok}", "stats.since": "开始", "stats.until": "结束", "stats.bucket": "周期",
      "stats.group": "分组", "stats.apply": "查询", "stats.day": "按日", "stats.week": "按周",
      "group.source": "来源", "group.category": "类别", "group.area": "区域", "group.camera": "摄像头", "group.zone": "区域划线",
      "stats.stages": "各环节用时中位数", "stats.stage": "环节", "stats.median": "中位数", "stats.n": "案件",
      "stage.review": "发现→审核", "stage.confirm": "审核→立案", "stage.dispatch": "立案→派遣",
      "stage.resolve": "派遣→处置", "stage.close": "处置→结案",
      "stats.fp": "误报率（驳回占比）", "stats.by": "维度", "stats.key": "对象", "stats.decided": "已审",
      "stats.rejected": "驳回", "stats.rate": "误报率", "stats.reasons": "驳回原因", "stats.csv": "导出 CSV",
      "stats.chart": "案件量",
      "map.title": "一张图", "map.cameras": "摄像头", "map.points": "二维码点位", "map.cases": "未结案件",
      "map.officers": "队员", "map.areas": "片区", "map.unplaced": "未定位", "map.nolib": "地图库未安装（运行 scripts/web-vendor.sh）。",
      "map.open": "打开案件", "sla.ok": "正常", "sla.due_soon": "即将超时", "sla.breached": "已超时",
      "cam.online": "在线", "cam.offline": "离线",
      "case.title": "案件 #{id}", "case.state": "状态", "case.category": "类别", "case.source": "来源",
      "case.where": "位置", "case.detected": "发现时间", "case.reports": "群众上报", "case.history": "处理记录",
      "case.console": "在审核台处理",
      "source.camera": "视频发现", "source.resident": "群众上报", "source.open311": "Open311",
    },
    en: {
      "nav.stats": "Statistics", "nav.map": "One map", "nav.console": "Console", "lang": "中文", "logout": "Sign out",
      "login.title": "Sign in", "login.user": "User name", "login.password": "Password", "login.submit": "Sign in",
      "login.failed": "Wrong user name or password.",
      "stats.title": "Case statistics", "stats.cases": "Cases", "stats.solved": "Solved within limit",
      "stats.ontime": "On-time closure (按期结案率)", "stats.due": "due {due} · on time {ok}", "stats.since": "From",
      "stats.until": "To", "stats.bucket": "Per", "stats.group": "Group by", "stats.apply": "Show",
      "stats.day": "day", "stats.week": "week",
      "group.source": "source", "group.category": "category", "group.area": "area", "group.camera": "camera", "group.zone": "zone",
      "stats.stages": "Median time per stage", "stats.stage": "Stage", "stats.median": "Median", "stats.n": "Cases",
      "stage.review": "detected→review", "stage.confirm": "review→confirmed", "stage.dispatch": "confirmed→dispatched",
      "stage.resolve": "dispatched→resolved", "stage.close": "resolved→closed",
      "stats.fp": "False-positive rate (rejected share)", "stats.by": "By", "stats.key": "Which",
      "stats.decided": "Decided", "stats.rejected": "Rejected", "stats.rate": "Rate", "stats.reasons": "Reasons",
      "stats.csv": "Export CSV", "stats.chart": "Cases",
      "map.title": "One map", "map.cameras": "Cameras", "map.points": "QR points", "map.cases": "Open cases",
      "map.officers": "Officers", "map.areas": "Areas", "map.unplaced": "No location", "map.nolib": "The map library is not installed (run scripts/web-vendor.sh).",
      "map.open": "Open the case", "sla.ok": "on time", "sla.due_soon": "due soon", "sla.breached": "overdue",
      "cam.online": "online", "cam.offline": "offline",
      "case.title": "Case #{id}", "case.state": "State", "case.category": "Category", "case.source": "Source",
      "case.where": "Where", "case.detected": "Detected", "case.reports": "Reports", "case.history": "History",
      "case.console": "Handle in the console",
      "source.camera": "camera", "source.resident": "resident", "source.open311": "Open311",
    },
  };
  let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "zh-CN";
  const has = (key) => key in TEXT[lang];
  const t = (key, values = {}) => (TEXT[lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "onclick") node.addEventListener("click", v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  };
  function translate(root = document) {
    document.documentElement.lang = lang;
    root.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  }
  async function api(path, options = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { ...(options.headers || {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch(path, { ...options, headers });
    if (resp.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin(); throw new Error("unauthorised"); }
    if (!resp.ok) throw new Error(`${resp.status} ${await resp.text()}`);
    return resp;
  }
  let onReady = () => {};
  function showLogin() {
    document.getElementById("page").hidden = true;
    const box = document.getElementById("login");
    box.hidden = false;
    box.replaceChildren(
      el("h2", { text: t("login.title") }),
      el("label", {}, t("login.user"), el("input", { id: "login-user", autocomplete: "username" })),
      el("label", {}, t("login.password"), el("input", { id: "login-password", type: "password", autocomplete: "current-password" })),
      el("p", { id: "login-error", class: "error" }),
      el("button", { id: "login-submit", onclick: login, text: t("login.submit") }),
    );
  }
  async function login() {
    const resp = await fetch("/api/v1/console/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: document.getElementById("login-user").value, password: document.getElementById("login-password").value }),
    });
    if (!resp.ok) { document.getElementById("login-error").textContent = t("login.failed"); return; }
    sessionStorage.setItem(TOKEN_KEY, (await resp.json()).token);
    start();
  }
  function start() {
    document.getElementById("login").hidden = true;
    document.getElementById("page").hidden = false;
    translate();
    onReady();
  }
  function init(ready) {
    onReady = ready;
    document.getElementById("lang").addEventListener("click", () => {
      lang = lang === "en" ? "zh-CN" : "en";
      localStorage.setItem(LANG_KEY, lang);
      translate();
      onReady();
    });
    document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
    if (sessionStorage.getItem(TOKEN_KEY)) start(); else { translate(); showLogin(); }
  }
  return { t, has, el, api, init, translate, get lang() { return lang; } };
})();
