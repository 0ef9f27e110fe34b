// The driver's bills from /user/lognew, newest first, ten at a time ("more" asks for ten more:
// the documented API has `num`, up to 100, and no offset).

import { fill, h, kwh, yuan } from "./dom.js";
import { refusal, t } from "./i18n.js";

const PAGE = 10;
const MOST = 100;

export class HistoryPanel {
  constructor(app) {
    this.app = app;
    this.num = PAGE;
    this.list = h("ul", { class: "bills", dataset: { test: "history" } });
    this.status = h("p", { class: "muted", dataset: { test: "history-status" } }, t("loading"));
    this.more = h("button", { type: "button", class: "hidden", dataset: { test: "more" } }, t("history.more"));
    this.more.addEventListener("click", () => {
      this.num = Math.min(MOST, this.num + PAGE);
      this.load();
    });
    this.root = h("section", { class: "card" }, h("h2", {}, t("history.title")), this.status, this.list,
      h("div", { class: "actions" }, this.more));
    this.load();
  }

  async load() {
    this.more.disabled = true;
    let reply;
    try {
      reply = await this.app.call("GET", "/user/lognew", { num: this.num });
    } catch (error) {
      this.status.className = "notice error";
      this.status.textContent = refusal(error.error, error.msg);
      this.more.disabled = false;
      return;
    }
    const bills = reply.log;
    this.status.className = bills.length ? "hidden" : "muted";
    this.status.textContent = bills.length ? "" : t("history.empty");
    fill(this.list, bills.map((bill) => this.item(bill)));
    this.more.disabled = false;
    this.more.classList.toggle("hidden", bills.length < this.num || this.num >= MOST);
  }

  item(bill) {
    const pile = pileName(this.app, bill.stationId);
    return h("li", { dataset: { test: "history-item", bill: bill.id } },
      h("div", { class: "row" },
        h("span", { dataset: { test: "history-time" } }, bill.time),
        h("span", { class: "cost", dataset: { test: "history-total" } }, t("unit.yuan", { v: yuan(bill.cost) }))),
      h("div", { class: "row muted" },
        h("span", {}, `${t("bill.pile")} ${pile}`),
        h("span", { dataset: { test: "history-kwh" } }, t("unit.kwh", { v: kwh(bill.quantity) })),
        h("span", {}, `${t("bill.duration")} ${bill.timeOfUse}`)),
      h("div", { class: "row muted" },
        h("span", {}, `${t("bill.charge")} ¥${yuan(bill.costOfCharge)}`),
        h("span", {}, `${t("bill.service")} ¥${yuan(bill.costOfService)}`)));
  }
}

/** A pile's name from the station's list (its number if the list is not known). */
export function pileName(app, stationId) {
  const pile = app.station?.piles?.find((p) => p.stationId === stationId);
  return pile ? pile.name : String(stationId);
}
