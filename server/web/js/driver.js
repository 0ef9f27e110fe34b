// The driver app: one page, three views (log in, charge, bills), one WebSocket for all of
// them. The views redraw from the socket's state whenever it changes.

import { api } from "./api.js";
import { ChargeSocket } from "./charge_socket.js";
import { fill, h } from "./dom.js";
import { add, languageSwitch, onLang, t } from "./i18n.js";
import { clearSession, loadSession, saveToken } from "./session.js";
import strings from "./strings_driver.js";
import { ChargePanel, loginView } from "./driver_views.js";
import { HistoryPanel } from "./history.js";

add(strings);

const app = {
  session: null,
  reason: null, // why the driver was sent back to the login view
  station: null, // GET /station: piles and limits
  socket: null,
  loaded: false, // whether the page asked the station for a request yet
  panel: null, // the charge view, built once and updated in place (typing is never lost)
  bills: null, // the bills view, read when it is opened
};

const view = document.getElementById("view");
const banner = document.getElementById("banner");

app.token = () => app.session?.token || "";

app.login = (token) => {
  app.session = saveToken("driver", token);
  app.reason = null;
  app.loaded = false;
  go("#/charge");
};

app.logout = (reason = "logged_out") => {
  app.socket.close();
  app.socket.reset();
  clearSession("driver");
  app.session = null;
  app.panel = null;
  app.reason = reason;
  go("#/login");
};

/** A refusal of the token by the station (expired, or no longer valid): back to log in. */
app.tokenRefused = (error) => app.logout(error === "token_expired" ? "token_expired" : "bad_token");

/** An API call with the driver's token; a refused token logs out. */
app.call = async (method, path, params = {}) => {
  try {
    return await api(method, path, { params, token: app.token() });
  } catch (error) {
    if (error.status === 401 && (error.error === "bad_token" || error.error === "token_expired")) {
      app.tokenRefused(error.error);
    }
    throw error;
  }
};

app.socket = new ChargeSocket(app.token, app.tokenRefused);
app.render = render;

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function loadStation() {
  try {
    app.station = await api("GET", "/station");
  } catch {
    app.station = { maxQuantityKwh: 300, piles: [] };
  }
}

/** On load (and after a log in): is there a request to resume? */
async function resumeIfAny() {
  app.loaded = true;
  try {
    const reply = await app.call("GET", "/user/request");
    if (reply.request !== null) app.socket.resume();
  } catch {
    // the socket view shows the network error when the driver acts
  }
  render();
}

function header() {
  document.getElementById("title").textContent = t("app.title");
  document.title = t("app.title");
  const who = document.getElementById("who");
  who.textContent = app.session ? t("who", { name: app.session.name }) : "";
  const logout = document.getElementById("logout");
  logout.textContent = t("logout");
  logout.classList.toggle("hidden", !app.session);
  const tabs = document.getElementById("tabs");
  tabs.classList.toggle("hidden", !app.session);
  const route = currentRoute();
  for (const name of ["charge", "history"]) {
    const tab = document.getElementById(`tab-${name}`);
    tab.textContent = t(`nav.${name}`);
    if (route === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

function connectionBanner() {
  const socket = app.socket;
  let text = "";
  if (!navigator.onLine && socket.status !== "idle") text = t("conn.offline");
  else if (socket.status === "reconnecting") {
    const seconds = Math.max(0, Math.ceil((socket.retryAt - Date.now()) / 1000));
    text = seconds > 0 ? t("conn.lost", { s: seconds }) : t("conn.now");
  }
  banner.textContent = text;
  banner.classList.toggle("hidden", !text);
}

function currentRoute() {
  const route = location.hash.replace(/^#\/?/, "");
  if (!app.session) return "login";
  return route === "history" ? "history" : "charge";
}

function render() {
  header();
  connectionBanner();
  const route = currentRoute();
  if (route === "login") {
    fill(view, loginView(app));
  } else if (route === "history") {
    app.bills ??= new HistoryPanel(app);
    if (view.firstChild !== app.bills.root) fill(view, app.bills.root);
  } else {
    if (!app.loaded) {
      fill(view, h("p", { class: "muted" }, t("loading")));
      resumeIfAny();
      return;
    }
    app.panel ??= new ChargePanel(app);
    if (view.firstChild !== app.panel.root) fill(view, app.panel.root);
    app.panel.update();
  }
  document.documentElement.dataset.ready = "1";
}

async function main() {
  const kept = loadSession("driver");
  app.session = kept.session;
  app.reason = kept.reason;
  document.getElementById("lang").append(languageSwitch(h));
  document.getElementById("logout").addEventListener("click", () => app.logout());
  window.addEventListener("hashchange", () => {
    app.bills = null; // the bills are read afresh each time the view is opened
    render();
  });
  window.addEventListener("offline", connectionBanner);
  window.addEventListener("online", connectionBanner);
  onLang(() => {
    app.panel = null; // rebuilt in the new language
    app.bills = null;
    render();
  });
  app.socket.subscribe(render);
  // The countdown in the banner moves every second while reconnecting.
  setInterval(() => {
    if (app.socket.status === "reconnecting") connectionBanner();
  }, 1000);
  await loadStation();
  render();
}

main();
