// The live view: every pile as a card, the waiting area and the priority lines, and the event
// log, all drawn from the operators' feed (admin_feed.js) without a reload. Cards are built
// once per pile and their fields updated in place at each snapshot.
import { h, fill, kwh, yuan } from "./dom.js";
import { t } from "./i18n.js";
import { Feed } from "./admin_feed.js";
import { switchOff, switchOn, stopSession } from "./admin_actions.js";
import { carList, updateCars, EventLog } from "./admin_cars.js";

/**
 * What the operator calls the pile's state. The station knows working / fault / off; a working
 * pile is "charging" when the first car of its queue is charging (area "charging": plugged in
 * and metered), and "idle" otherwise, also while a called car is still on its way.
 */
export function pileState(pile) {
  if (pile.state !== "working") return pile.state;
  return pile.queue.length && pile.queue[0].area === "charging" ? "charging" : "idle";
}

function powerText(watts) {
  return watts === null || watts === undefined ? "—" : `${(watts / 1000).toFixed(1)} kW`;
}

export class LiveView {
  constructor(ctx) {
    this.ctx = ctx;
    this.snapshot = null;
    this.cards = new Map();
    this.log = new EventLog();
    this.link = null; // null before the first answer, then true/false
    this.el = h("div", { class: "live-view", dataset: { test: "live-view" } });
    this.feed = new Feed({
      token: ctx.token,
      onMessage: (msg) => this.onMessage(msg),
      onLink: (up) => this.onLink(up),
      onRefused: (error) => ctx.lost(error),
    });
    this.render();
  }

  start() {
    this.feed.start();
  }

  stop() {
    this.feed.stop();
    this.ctx.banner(null);
  }

  onLink(up) {
    this.link = up;
    this.ctx.banner(up ? null : t("live.disconnected"));
  }

  onMessage(msg) {
    if (msg.type === "snapshot") {
      this.snapshot = msg;
      this.update();
    } else if (msg.type === "event") {
      this.log.add(msg, this.pileNames());
    }
  }

  pileNames() {
    return new Map((this.snapshot?.piles || []).map((p) => [p.stationId, p.name]));
  }

  /** The whole view afresh (first draw, and a language switch). */
  render() {
    this.cards.clear();
    this.time = h("p", { class: "muted", dataset: { test: "live-time" } }, t("live.connecting"));
    this.grid = h("div", { class: "piles", dataset: { test: "piles" } });
    this.waiting = carList("waiting-list");
    this.priority = { fast: carList("priority-fast"), common: carList("priority-common") };
    this.log.render();
    fill(this.el,
      h("section", { class: "live-piles", "aria-labelledby": "piles-title" },
        h("div", { class: "live-head" }, h("h2", { id: "piles-title" }, t("live.piles")), this.time),
        this.grid),
      h("div", { class: "live-lines" },
        h("section", { class: "card", dataset: { test: "waiting" } },
          h("h2", {}, t("live.waiting")), this.waiting),
        h("section", { class: "card", dataset: { test: "priority" } },
          h("h2", {}, t("live.priority")),
          h("h3", {}, t("live.priority.fast")), this.priority.fast,
          h("h3", {}, t("live.priority.common")), this.priority.common),
        h("section", { class: "card", dataset: { test: "events" } },
          h("h2", {}, t("live.events")), this.log.list)));
    if (this.link === false) this.ctx.banner(t("live.disconnected"));
    if (this.snapshot) this.update();
  }

  update() {
    const snap = this.snapshot;
    this.time.textContent = t("live.asof", { time: snap.time });
    const seen = new Set();
    for (const pile of snap.piles) {
      seen.add(pile.stationId);
      let card = this.cards.get(pile.stationId);
      if (!card) {
        card = new PileCard(this.ctx);
        this.cards.set(pile.stationId, card);
      }
      card.update(pile);
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    const order = snap.piles.map((p) => this.cards.get(p.stationId).el);
    order.forEach((el, i) => {
      if (this.grid.children[i] !== el) this.grid.insertBefore(el, this.grid.children[i] || null);
    });
    updateCars(this.ctx, this.waiting, snap.waiting);
    updateCars(this.ctx, this.priority.fast, snap.priority.fast || []);
    updateCars(this.ctx, this.priority.common, snap.priority.common || []);
  }
}

/** One pile's card. */
class PileCard {
  constructor(ctx) {
    this.ctx = ctx;
    this.pile = null;
    const field = (name) => h("dd", { dataset: { field: name } });
    this.title = h("h3");
    this.badge = h("span", { class: "badge" });
    this.spec = h("p", { class: "muted spec" });
    this.silent = h("p", { class: "notice warn hidden" }, t("pile.not_answering"));
    this.who = field("who");
    this.kwh = field("kwh");
    this.power = field("power");
    this.fee = field("fee");
    this.bar = h("progress", { max: "1", value: "0" });
    this.queue = carList("");
    this.totals = h("p", { class: "muted totals" });
    const button = (label, name, run, cls) => h("button", {
      type: "button", class: cls, dataset: { action: name }, onclick: () => run(ctx, this.pile),
    }, label);
    this.buttons = [
      button(t("action.off"), "off", switchOff, "danger"),
      button(t("action.on"), "on", switchOn, null),
      button(t("action.stop"), "stop", stopSession, null),
    ];
    this.el = h("section", { class: "card pile" },
      h("div", { class: "pile-head" }, this.title, this.badge),
      this.spec, this.silent,
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, t("pile.who")), this.who),
        h("div", {}, h("dt", {}, t("pile.kwh")), this.kwh),
        h("div", {}, h("dt", {}, t("pile.power_now")), this.power),
        h("div", {}, h("dt", {}, t("pile.fee")), this.fee)),
      this.bar,
      h("h4", {}, t("pile.queue")), this.queue,
      this.totals,
      h("div", { class: "actions" }, this.buttons));
  }

  /** Test ids carry the pile's number: `pile-1`, `pile-state-1`, `pile-off-1` … */
  mark(id) {
    this.el.dataset.test = `pile-${id}`;
    this.badge.dataset.test = `pile-state-${id}`;
    for (const name of ["who", "kwh", "power", "fee"]) {
      this[name].dataset.test = `pile-${name}-${id}`;
    }
    this.queue.dataset.test = `pile-queue-${id}`;
    for (const b of this.buttons) b.dataset.test = `pile-${b.dataset.action}-${id}`;
  }

  update(pile) {
    if (!this.pile || this.pile.stationId !== pile.stationId) this.mark(pile.stationId);
    this.pile = pile;
    const state = pileState(pile);
    const head = state === "charging" ? pile.queue[0] : null;
    this.el.dataset.state = state;
    this.title.textContent = pile.name;
    this.badge.className = `badge ${state}`;
    this.badge.textContent = t(`state.${state}`);
    this.spec.textContent = `${t(`mode.${pile.mode}`)} · ${t("pile.power", { kw: pile.powerKw })}`;
    this.silent.classList.toggle("hidden", pile.answering !== false || pile.state !== "working");
    this.who.textContent = head ? `${head.username} · ${head.queueNo}` : "—";
    this.kwh.textContent = head ? `${kwh(head.charged)} / ${kwh(head.quantity)}` : "—";
    this.power.textContent = powerText(pile.powerNowW);
    this.fee.textContent = head ? t("money", { yuan: yuan(head.fee) }) : "—";
    this.bar.value = head && head.quantity > 0 ? Math.min(1, head.charged / head.quantity) : 0;
    this.bar.classList.toggle("hidden", !head);
    updateCars(this.ctx, this.queue, pile.queue);
    this.totals.textContent = t("pile.totals", {
      sessions: pile.sessions, kwh: kwh(pile.quantity), cost: yuan(pile.cost),
    });
  }
}
