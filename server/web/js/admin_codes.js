// Registration codes: issue one (POST /admin/codes) and show it big enough to read out or copy
// for a new driver, with its expiry. The codes issued are listed for this page only: a code is
// a credential until it is spent, so the browser does not keep it anywhere.
import { h, fill } from "./dom.js";
import { t, refusal } from "./i18n.js";
import { ApiError } from "./api.js";

const DEFAULT_HOURS = 168; // a week, as the station's own default

export class CodesView {
  constructor(ctx) {
    this.ctx = ctx;
    this.issued = []; // newest first: {registrationCode, expires}
    this.hours = String(DEFAULT_HOURS);
    this.el = h("section", { class: "codes-view", dataset: { test: "codes-view" } });
    this.render();
  }

  render() {
    this.hoursField = h("input", {
      type: "number", id: "code-hours", min: "0.01", max: "8760", step: "any", value: this.hours,
      inputmode: "decimal", required: true, dataset: { test: "code-hours" },
    });
    this.notice = h("p", { class: "notice error hidden", role: "alert", dataset: { test: "code-notice" } });
    // Built once and filled in place: the newest code replaces the last one on the same element.
    this.codeBig = h("p", { class: "code-big", dataset: { test: "code-value" } });
    this.codeExpires = h("p", { dataset: { test: "code-expires" } });
    this.latest = h("div", { class: "code-latest hidden", "aria-live": "polite" },
      this.codeBig, this.codeExpires, h("p", { class: "hint" }, t("codes.hand_out")));
    this.list = h("ol", { class: "codes", dataset: { test: "codes-list", empty: t("codes.none") } });
    const form = h("form", { class: "card" },
      h("h2", {}, t("codes.title")),
      h("label", { for: "code-hours" }, t("codes.hours")), this.hoursField,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", dataset: { test: "code-issue" } }, t("codes.issue"))),
      this.notice, this.latest);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.issue();
    });
    fill(this.el, form, h("section", { class: "card" }, h("h2", {}, t("codes.issued")), this.list));
    this.draw();
  }

  async issue() {
    this.hours = this.hoursField.value;
    this.notice.classList.add("hidden");
    let reply;
    try {
      reply = await this.ctx.call("POST", "/admin/codes", { hours: this.hours || String(DEFAULT_HOURS) });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.notice.textContent = refusal(err.error, err.msg);
      this.notice.classList.remove("hidden");
      return;
    }
    this.issued.unshift({ code: reply.registrationCode, expires: reply.expires });
    this.draw();
  }

  draw() {
    const [latest] = this.issued;
    this.latest.classList.toggle("hidden", !latest);
    if (latest) {
      this.codeBig.textContent = latest.code;
      this.codeExpires.textContent = t("codes.expires", { expires: latest.expires });
    }
    this.list.dataset.empty = t("codes.none");
    fill(this.list, this.issued.map((c) =>
      h("li", {}, h("code", {}, c.code), " · ", t("codes.expires", { expires: c.expires }))));
  }
}
