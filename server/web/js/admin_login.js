// The operators' login view: the reason the last session ended (expired, not an operator), then
// the form. Only a token with the operator role goes on to the dashboard (admin.js checks it).
import { h } from "./dom.js";
import { t, refusal } from "./i18n.js";
import { api, ApiError } from "./api.js";

function reasonNotice(reason) {
  if (!reason) return null;
  if (reason === "not_operator") {
    return h("div", { class: "notice error", role: "alert", dataset: { test: "login-notice" } },
      h("p", {}, t("login.not_operator")),
      h("p", {}, h("a", { href: "/" }, t("login.driver_app"))));
  }
  const text = reason === "token_expired" ? t("login.expired") : refusal(reason, "");
  return h("p", { class: "notice warn", role: "alert", dataset: { test: "login-notice" } }, text);
}

export function loginView({ reason, onLogin }) {
  const username = h("input", {
    type: "text", id: "login-username", name: "username", autocomplete: "username",
    autocapitalize: "none", spellcheck: "false", dataset: { test: "login-username" },
  });
  const password = h("input", {
    type: "password", id: "login-password", name: "password", autocomplete: "current-password",
    dataset: { test: "login-password" },
  });
  const submit = h("button", { type: "submit", class: "primary", dataset: { test: "login-submit" } },
    t("login.submit"));
  const error = h("p", { class: "notice error hidden", role: "alert", dataset: { test: "login-error" } });

  const form = h("form", { class: "card login", dataset: { test: "login-form" }, novalidate: true },
    h("h2", {}, t("login.title")),
    h("label", { for: "login-username" }, t("login.username")), username,
    h("label", { for: "login-password" }, t("login.password")), password,
    error,
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!username.value || !password.value) {
      (username.value ? password : username).focus();
      return;
    }
    submit.disabled = true;
    error.classList.add("hidden");
    try {
      const reply = await api("POST", "/login", {
        params: { username: username.value, password: password.value },
      });
      await onLogin(reply.token);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = refusal(err.error, err.msg);
      error.classList.remove("hidden");
      password.select();
    } finally {
      submit.disabled = false;
    }
  });

  const view = h("div", { class: "login-view", dataset: { test: "login-view", reason: reason || "" } },
    reasonNotice(reason), form);
  queueMicrotask(() => username.focus());
  return view;
}
