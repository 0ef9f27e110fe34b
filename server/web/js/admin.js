// The operator dashboard at /admin: who is logged in, the tabs (live, reports, codes), and what
// happens when the station refuses the token. Each view lives in its own module.
import "./strings_admin.js";
import { h, fill } from "./dom.js";
import { t, languageSwitch, onLang } from "./i18n.js";
import { api, ApiError } from "./api.js";
import { saveToken, loadSession, clearSession } from "./session.js";
import { loginView } from "./admin_login.js";
import { LiveView } from "./admin_piles.js";
import { ReportsView } from "./admin_reports.js";
import { CodesView } from "./admin_codes.js";

const KIND = "admin";
const TABS = ["live", "reports", "codes"];
const $ = (id) => document.getElementById(id);

let session = null;
let views = null; // {live, reports, codes} while logged in
let toastTimer = null;

/** What every view may ask of the page: the API with the token, and the shared notices. */
const ctx = {
  /** The operator API with this operator's token; a refused token ends the session. */
  async call(method, path, params = {}, { raw = false } = {}) {
    try {
      return await api(method, path, { params, token: session?.token, raw });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.error === "not_operator")) {
        lost(err.error);
      }
      throw err;
    }
  },
  token: () => session?.token,
  lost: (reason) => lost(reason),
  banner(text) {
    const banner = $("banner");
    banner.classList.toggle("hidden", !text);
    banner.textContent = text || "";
  },
  /** The result of an action, or its refusal, where a phone's user sees it (fixed at the bottom). */
  toast(kind, text) {
    const toast = $("toast");
    clearTimeout(toastTimer);
    toast.className = `toast notice ${kind}`;
    if (!toast.firstChild) {
      toast.append(h("span", { dataset: { test: "action-text" } }),
        h("button", { type: "button", class: "dismiss", onclick: hideToast }, "×"));
    }
    // Filled in place: a test or a screen reader watching the text keeps the same element.
    toast.firstChild.textContent = text;
    toast.lastChild.setAttribute("aria-label", t("action.dismiss"));
    // A refusal stays until dismissed or replaced; a success goes by itself.
    if (kind === "ok") toastTimer = setTimeout(hideToast, 8000);
  },
};

function hideToast() {
  clearTimeout(toastTimer);
  $("toast").classList.add("hidden");
}

/** The station refused the token (expired, not an operator): back to the login view, with why. */
function lost(reason) {
  if (!session) return;
  clearSession(KIND);
  session = null;
  showLogin(reason);
}

function showLogin(reason) {
  stopViews();
  ctx.banner(null);
  hideToast();
  $("tabs").classList.add("hidden");
  $("logout").classList.add("hidden");
  $("who").textContent = "";
  fill($("main"), loginView({ reason, onLogin: loggedIn }));
}

async function loggedIn(token) {
  const made = saveToken(KIND, token);
  if (!made || made.role !== "operator") {
    clearSession(KIND); // a driver's token is never kept here
    showLogin("not_operator");
    return;
  }
  session = made;
  showDashboard();
}

function showDashboard() {
  stopViews();
  $("who").textContent = session.name || "";
  $("logout").classList.remove("hidden");
  views = { live: new LiveView(ctx), reports: new ReportsView(ctx), codes: new CodesView(ctx) };
  fill($("main"), views.live.el, views.reports.el, views.codes.el);
  views.live.start();
  renderTabs();
  route();
}

function stopViews() {
  if (views) for (const view of Object.values(views)) view.stop?.();
  views = null;
}

function current() {
  const name = location.hash.slice(1);
  return TABS.includes(name) ? name : "live";
}

function renderTabs() {
  const nav = $("tabs");
  nav.classList.remove("hidden");
  const name = current();
  fill(nav, TABS.map((tab) => h("a", {
    href: `#${tab}`,
    "aria-current": tab === name ? "page" : null,
    dataset: { test: `tab-${tab}` },
  }, t(`tab.${tab}`))));
}

function route() {
  if (!views) return;
  const name = current();
  for (const [tab, view] of Object.entries(views)) view.el.classList.toggle("hidden", tab !== name);
  views[name].shown?.();
  renderTabs();
}

function renderStatic() {
  document.title = t("title");
  $("title").textContent = t("title");
  $("logout").textContent = t("logout");
}

function boot() {
  renderStatic();
  $("lang-slot").replaceWith(languageSwitch(h));
  $("logout").addEventListener("click", () => {
    clearSession(KIND);
    session = null;
    showLogin(null);
  });
  window.addEventListener("hashchange", route);
  onLang(() => {
    renderStatic();
    if (views) {
      for (const view of Object.values(views)) view.render();
      renderTabs();
    } else {
      const reason = $("main").querySelector("[data-reason]")?.dataset.reason || null;
      showLogin(reason);
    }
  });
  const kept = loadSession(KIND);
  if (kept.session && kept.session.role === "operator") {
    session = kept.session;
    showDashboard();
  } else {
    if (kept.session) clearSession(KIND);
    showLogin(kept.session ? "not_operator" : kept.reason);
  }
  document.documentElement.dataset.ready = "1"; // the first view is drawn (bench/web_load.py)
}

boot();
