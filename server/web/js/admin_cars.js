// Lists of cars (a pile's queue, the waiting area, the priority lines) and the live event log.
// A list is updated in place, row by row, keyed by the user: a snapshot every quarter second
// must not replace the button under the operator's finger.
import { h, kwh } from "./dom.js";
import { t } from "./i18n.js";
import { removeRequest } from "./admin_actions.js";

const MAX_EVENTS = 30;

/** Make `list`'s children the rows of `items`, reusing the rows whose key is still there. */
export function keyed(list, items, keyOf, make, update) {
  const old = new Map([...list.children].map((row) => [row.dataset.key, row]));
  const rows = items.map((item) => {
    const key = String(keyOf(item));
    let row = old.get(key);
    if (!row) {
      row = make(item);
      row.dataset.key = key;
    }
    update(row, item);
    return row;
  });
  rows.forEach((row, i) => {
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
  });
  const keep = new Set(rows);
  for (const row of [...list.children]) if (!keep.has(row)) row.remove();
}

/** An empty list; says "none" through CSS (data-empty) when it has no rows. */
export function carList(testId) {
  return h("ol", { class: "cars", dataset: { test: testId, empty: t("live.none") } });
}

export function updateCars(ctx, list, cars) {
  keyed(list, cars, (car) => car.username, (car) => carRow(ctx, car), fillCarRow);
}

function carRow(ctx, car) {
  const text = h("span", { class: "car-text" });
  const remove = h("button", {
    type: "button", class: "small", dataset: { test: `remove-${car.username}` },
  }, t("action.remove"));
  const row = h("li", { dataset: { test: `car-${car.username}` } }, text, remove);
  row.car = car;
  remove.addEventListener("click", () => removeRequest(ctx, row.car));
  return row;
}

function fillCarRow(row, car) {
  row.car = car;
  const parts = [t("car.row", {
    queueNo: car.queueNo, username: car.username, quantity: kwh(car.quantity),
    area: t(`area.${car.area}`),
  })];
  if (car.area !== "charging") parts.push(t("car.waited", { min: Math.floor(car.waitedSeconds / 60) }));
  row.firstChild.textContent = parts.join(" · ");
}

/** The event log: the newest first, kept as the station sent it so a language switch redraws it. */
export class EventLog {
  constructor() {
    this.events = [];
    this.list = h("ol", { class: "events", dataset: { test: "event-log", empty: t("live.no_events") } });
  }

  add(event, pileNames) {
    const at = new Date().toLocaleTimeString([], { hour12: false });
    const pile = pileNames.get(event.stationId) ?? String(event.stationId ?? "");
    this.events.unshift({ event, at, pile });
    this.events.length = Math.min(this.events.length, MAX_EVENTS);
    this.render();
  }

  render() {
    this.list.dataset.empty = t("live.no_events");
    this.list.replaceChildren(...this.events.map(({ event, at, pile }) =>
      h("li", { dataset: { kind: event.kind } }, h("time", {}, at), " ", describe(event, pile))));
  }
}

/** Our word for a value of the station's, or the value itself if it is new to this page. */
function wordFor(prefix, value) {
  const key = `${prefix}.${value}`;
  const word = t(key);
  return word === key ? String(value) : word;
}

function describe(event, pile) {
  const reason = event.reason ? wordFor("reason", event.reason) : "";
  switch (event.kind) {
    case "bill":
      return t("event.bill", {
        pile, username: event.username, queueNo: event.queueNo,
        quantity: kwh(event.quantity), cost: kwh(event.cost), reason,
      });
    case "call":
      return t("event.call", { pile, username: event.username, queueNo: event.queueNo, place: event.place });
    case "pile":
      return t("event.pile", { pile, state: wordFor("pstate", event.state) });
    case "displaced":
      return t("event.displaced", { pile, username: event.username });
    case "done":
      return t("event.done", { username: event.username, reason });
    default:
      return event.kind;
  }
}
