// The driver app's log in and charge views. The charge view is built once and updated in
// place from the socket's state, so a progress message never wipes what the driver types.

import { api } from "./api.js";
import { confirmDialog, fill, h, kwh, yuan } from "./dom.js";
import { refusal, t } from "./i18n.js";
import { pileName } from "./history.js";

const MAX_CAPACITY_KWH = 1000; // as the station checks it

// -- log in and register ---------------------------------------------------------------------
export function loginView(app) {
  let registering = false;
  const error = h("p", { class: "notice error hidden", role: "alert", dataset: { test: "login-error" } });
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true,
    maxlength: 64, dataset: { test: "username" } });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password",
    required: true, minlength: 6, maxlength: 256, dataset: { test: "password" } });
  const code = h("input", { type: "text", name: "code", autocomplete: "off", dataset: { test: "code" } });
  const codeBlock = h("div", { class: "hidden" },
    h("label", {}, t("field.code"), code), h("p", { class: "hint" }, t("field.code.hint")));
  const title = h("h2", {});
  const submit = h("button", { type: "submit", class: "primary", dataset: { test: "login-submit" } });
  const toggle = h("button", { type: "button", dataset: { test: "login-toggle" } });

  function mode(next) {
    registering = next;
    title.textContent = t(registering ? "register.title" : "login.title");
    submit.textContent = t(registering ? "register.submit" : "login.submit");
    toggle.textContent = t(registering ? "register.toLogin" : "login.toRegister");
    codeBlock.classList.toggle("hidden", !registering);
    code.required = registering;
    password.autocomplete = registering ? "new-password" : "current-password";
    error.classList.add("hidden");
  }

  const form = h("form", { class: "card", novalidate: true, dataset: { test: "login-form" } },
    title,
    app.reason ? h("p", { class: "notice warn", dataset: { test: "login-reason" } }, t(`reason.${app.reason}`)) : null,
    error,
    h("label", {}, t("field.username"), username),
    h("label", {}, t("field.password"), password),
    h("p", { class: "hint" }, t("field.password.hint")),
    codeBlock,
    h("div", { class: "actions" }, submit, toggle));

  toggle.addEventListener("click", () => mode(!registering));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.classList.add("hidden");
    submit.disabled = true;
    const params = { username: username.value, password: password.value };
    if (registering) params.code = code.value.trim();
    try {
      const reply = await api("POST", registering ? "/register" : "/login", { params });
      app.login(reply.token);
    } catch (failure) {
      error.textContent = refusal(failure.error, failure.msg);
      error.classList.remove("hidden");
    } finally {
      submit.disabled = false;
    }
  });
  mode(false);
  return form;
}

// -- the charge view -------------------------------------------------------------------------
/** kWh typed by a driver: a number above 0, at most `max`, in whole Wh; null if not. */
export function parseKwh(text, max) {
  const trimmed = String(text).trim();
  if (!/^\d+(\.\d{1,3})?$|^\.\d{1,3}$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return value > 0 && value <= max ? value : null;
}

export class ChargePanel {
  constructor(app) {
    this.app = app;
    this.max = app.station?.maxQuantityKwh ?? 300;
    this.ask = this.buildAsk();
    this.status = h("div", { dataset: { test: "request" } });
    this.revise = this.buildRevise();
    this.cancelButton = h("button", { type: "button", class: "danger", dataset: { test: "cancel" } }, t("cancel"));
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.actionError = h("p", { class: "notice error hidden", role: "alert", dataset: { test: "action-error" } });
    this.requestCard = h("section", { class: "card" }, this.status, this.actionError, this.revise,
      h("div", { class: "actions" }, this.cancelButton));
    this.doneCard = h("section", { class: "card hidden", dataset: { test: "done" } });
    this.root = h("div", {}, this.ask, this.requestCard, this.doneCard);
  }

  // -- asking ----------------------------------------------------------------------------
  buildAsk() {
    const piles = this.app.station?.piles ?? [];
    const modeChoice = (mode) => {
      const mine = piles.filter((p) => p.mode === mode);
      const key = mine.length === 1 ? "mode.piles.one" : "mode.piles";
      const detail = mine.length ? t(key, { count: mine.length, kw: mine[0].powerKw }) : "";
      return h("label", { class: "inline" },
        h("input", { type: "radio", name: "mode", value: mode, checked: mode === "fast", dataset: { test: `mode-${mode}` } }),
        t(`mode.${mode}`), detail ? h("span", { class: "muted" }, `(${detail})`) : null);
    };
    this.quantity = h("input", { type: "number", inputmode: "decimal", min: "0.001", max: this.max, step: "any",
      required: true, placeholder: "20", dataset: { test: "quantity" } });
    this.capacity = h("input", { type: "number", inputmode: "decimal", min: "0.001", max: MAX_CAPACITY_KWH, step: "any",
      placeholder: "60", dataset: { test: "capacity" } });
    this.askError = h("p", { class: "notice error hidden", role: "alert", dataset: { test: "request-error" } });
    this.askSubmit = h("button", { type: "submit", class: "primary", dataset: { test: "ask" } }, t("ask.submit"));
    const form = h("form", { class: "card", novalidate: true, dataset: { test: "ask-form" } },
      h("h2", {}, t("ask.title")),
      this.askError,
      h("fieldset", { class: "plain" }, h("legend", {}, t("ask.mode")), modeChoice("fast"), modeChoice("common")),
      h("label", {}, t("ask.quantity"), this.quantity),
      h("p", { class: "hint" }, t("ask.quantity.hint", { max: this.max })),
      h("label", {}, t("ask.capacity"), this.capacity),
      h("div", { class: "actions" }, this.askSubmit));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitAsk(form);
    });
    return form;
  }

  submitAsk(form) {
    const quantity = parseKwh(this.quantity.value, this.max);
    const capacityText = this.capacity.value.trim();
    const capacity = capacityText ? parseKwh(capacityText, MAX_CAPACITY_KWH) : null;
    let problem = null;
    if (quantity === null) problem = t("check.quantity", { max: this.max });
    else if (capacityText && capacity === null) problem = t("check.capacity");
    if (problem) {
      this.showError(this.askError, problem);
      return;
    }
    this.askError.classList.add("hidden");
    const mode = form.querySelector('input[name="mode"]:checked')?.value || "fast";
    this.askSubmit.disabled = true;
    this.app.socket.start(mode, quantity, capacity);
  }

  // -- changing and cancelling -----------------------------------------------------------
  buildRevise() {
    this.reviseMode = h("select", { class: "field", dataset: { test: "revise-mode" } },
      h("option", { value: "" }, t("revise.keep")),
      h("option", { value: "fast" }, t("mode.fast")),
      h("option", { value: "common" }, t("mode.common")));
    this.reviseQuantity = h("input", { type: "number", inputmode: "decimal", min: "0.001", max: this.max, step: "any",
      placeholder: t("revise.keep"), dataset: { test: "revise-quantity" } });
    this.reviseNote = h("p", { class: "notice ok hidden", dataset: { test: "revise-ok" } });
    const form = h("form", { novalidate: true, dataset: { test: "revise-form" } },
      h("h3", {}, t("revise.title")),
      h("p", { class: "hint", dataset: { test: "revise-hint" } }, t("revise.hint")),
      h("label", {}, t("ask.mode"), this.reviseMode),
      h("label", {}, t("ask.quantity"), this.reviseQuantity),
      this.reviseNote,
      h("div", { class: "actions" }, h("button", { type: "submit", dataset: { test: "revise" } }, t("revise.submit"))));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const change = {};
      if (this.reviseMode.value) change.mode = this.reviseMode.value;
      const text = this.reviseQuantity.value.trim();
      if (text) {
        const quantity = parseKwh(text, this.max);
        if (quantity === null) {
          this.showError(this.actionError, t("check.quantity", { max: this.max }));
          return;
        }
        change.quantity = quantity;
      }
      if (!Object.keys(change).length) {
        this.showError(this.actionError, t("error.nothing_to_revise"));
        return;
      }
      this.actionError.classList.add("hidden");
      this.reviseNote.classList.add("hidden");
      this.pendingRevise = true;
      if (!this.app.socket.revise(change)) this.showError(this.actionError, t("conn.now"));
    });
    return form;
  }

  async cancel() {
    const sure = await confirmDialog(t("cancel.confirm"), t("cancel.yes"), t("cancel.no"));
    if (!sure) return;
    if (!this.app.socket.cancel()) this.showError(this.actionError, t("conn.now"));
  }

  showError(node, text) {
    node.textContent = text;
    node.classList.remove("hidden");
  }

  // -- what the socket says --------------------------------------------------------------
  update() {
    const socket = this.app.socket;
    const showRequest = socket.request !== null && !socket.done && !socket.ended;
    const finished = Boolean(socket.done) || socket.ended;
    this.ask.classList.toggle("hidden", showRequest || finished);
    this.requestCard.classList.toggle("hidden", !showRequest);
    this.doneCard.classList.toggle("hidden", !finished);
    this.askSubmit.disabled = socket.status === "connecting";
    this.askSubmit.textContent = socket.status === "connecting" ? t("ask.joining") : t("ask.submit");
    const error = socket.error;
    if (error === null && this.stationErrorShown) {
      // The refusal was answered (a new request, a change accepted): its words go.
      this.askError.classList.add("hidden");
      this.actionError.classList.add("hidden");
    }
    this.stationErrorShown = error !== null;
    if (error && error.opening && !showRequest) {
      this.showError(this.askError, refusal(error.error, error.msg));
    } else if (error && !error.opening) {
      this.showError(this.actionError, refusal(error.error, error.msg));
    }
    if (showRequest) this.drawRequest(socket);
    if (finished) this.drawDone(socket);
  }

  drawRequest(socket) {
    const state = socket.request;
    const called = state.area === "queue" || state.area === "charging";
    const facts = (label, value, test) =>
      h("div", {}, h("dt", {}, label), h("dd", { dataset: { test } }, value));
    const share = state.quantity > 0 ? Math.min(1, state.charged / state.quantity) : 0;
    const lastFault = [...socket.bills].reverse().find((b) => b.kind === "fault");
    const faultShown = lastFault && !called;
    fill(this.status,
      h("div", { class: "ticket" },
        h("p", { class: "muted" }, t("req.number")),
        h("p", { class: "number", dataset: { test: "queue-no" } }, state.queueNo),
        h("p", { class: "area", dataset: { test: "area", area: state.area } }, t(`area.${state.area}`)),
        h("p", { dataset: { test: "ahead", ahead: state.ahead } },
          aheadText(state.ahead))),
      called ? h("div", { class: "call", role: "status", dataset: { test: "call" } },
        h("span", { class: "pile" }, t("call.go", { pile: pileName(this.app, state.stationId) })),
        h("span", {}, socket.place === 1 ? t("call.place1") : t("call.place", { place: socket.place }))) : null,
      faultShown ? h("div", { class: "notice warn", role: "alert", dataset: { test: "fault" } },
        h("strong", {}, t("fault.title")), " ",
        t("fault.body", {
          pile: pileName(this.app, lastFault.bill.stationId),
          kwh: kwh(lastFault.bill.quantity),
          cost: yuan(lastFault.bill.cost),
          left: kwh(state.remaining),
        })) : null,
      // Before the first kWh, a bar and a fee of nothing say nothing: the amount is enough.
      called || state.charged > 0 ? h("progress", { max: 1000, value: Math.round(share * 1000),
        dataset: { test: "progress" }, "aria-label": t("fact.charged") }) : null,
      h("dl", { class: "facts" },
        facts(t("fact.charged"), t("unit.kwh", { v: kwh(state.charged) }), "charged"),
        facts(t("fact.quantity"), t("unit.kwh", { v: kwh(state.quantity) }), "quantity"),
        facts(t("fact.remaining"), t("unit.kwh", { v: kwh(state.remaining) }), "remaining"),
        facts(t("fact.fee"), t("unit.yuan", { v: yuan(state.fee) }), "fee")),
      socket.bills.map((entry) => billCard(this.app, entry)));
    if (socket.revised && this.pendingRevise) {
      this.pendingRevise = false;
      this.reviseNote.textContent = t("revise.done", { no: state.queueNo });
      this.reviseNote.classList.remove("hidden");
      this.reviseQuantity.value = "";
      this.reviseMode.value = "";
      this.actionError.classList.add("hidden");
    }
  }

  drawDone(socket) {
    const reason = socket.ended ? "ended" : socket.done.reason;
    const again = h("button", { type: "button", class: "primary", dataset: { test: "new-charge" } }, t("done.new"));
    again.addEventListener("click", () => {
      socket.reset();
      this.askSubmit.disabled = false;
      this.app.render();
    });
    fill(this.doneCard,
      h("h2", { dataset: { test: "done-reason", reason } }, t(`done.${reason}`)),
      socket.bills.map((entry) => billCard(this.app, entry)),
      h("div", { class: "actions" }, again,
        h("a", { href: "#/history", dataset: { test: "to-history" } }, t("history.title"))));
  }
}

function aheadText(ahead) {
  if (ahead === 0) return t("ahead.none");
  return ahead === 1 ? t("ahead.one") : t("ahead", { n: ahead });
}

function billCard(app, entry) {
  const bill = entry.bill;
  const row = (label, value, test, cls) =>
    [h("dt", { class: cls }, label), h("dd", { class: cls, dataset: test ? { test } : undefined }, value)];
  return h("div", { class: "bill card", dataset: { test: entry.kind === "fault" ? "fault-bill" : "bill" } },
    h("h3", {}, entry.kind === "fault" ? t("bill.fault") : t("bill.title")),
    h("dl", {},
      row(t("bill.pile"), pileName(app, bill.stationId)),
      row(t("bill.quantity"), t("unit.kwh", { v: kwh(bill.quantity) }), "bill-kwh"),
      row(t("bill.start"), bill.startTime),
      row(t("bill.end"), bill.endTime),
      row(t("bill.charge"), t("unit.yuan", { v: yuan(bill.costOfCharge) }), "bill-charge"),
      row(t("bill.service"), t("unit.yuan", { v: yuan(bill.costOfService) }), "bill-service"),
      row(t("bill.total"), t("unit.yuan", { v: yuan(bill.cost) }), "bill-total", "total")));
}
