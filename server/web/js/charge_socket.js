// The driver's one WebSocket (the seed's design): opened when the driver asks for a pile, kept
// by the whole app until the bill, and read by every view through subscribe(). A lost
// connection is reopened with backoff; the request lives on in the station meanwhile.

import { api, socketUrl } from "./api.js";

const BACKOFF_S = [1, 2, 4, 8, 15]; // then 15 s, each with ±25 % jitter
const STATE_FIELDS = ["queueNo", "mode", "quantity", "remaining", "area", "ahead", "stationId", "charged", "fee"];
const CLOSE_BAD_INPUT = 4400;
const CLOSE_BAD_TOKEN = 4401;
const CLOSE_NOT_ALLOWED = 4403; // an operator's token: operators do not queue cars
const CLOSE_REFUSED = 4409;

export class ChargeSocket {
  /**
   * token(): the driver's token now; tokenRefused(reason): the station refused it (log out).
   */
  constructor(token, tokenRefused) {
    this.token = token;
    this.tokenRefused = tokenRefused;
    this.listeners = new Set();
    this.ws = null;
    this.timer = null;
    this.reset();
    window.addEventListener("online", () => this.reconnectNow());
  }

  reset() {
    this.status = "idle"; // idle | connecting | open | reconnecting
    this.request = null; // the request's state, as the last message told it
    this.lastType = null;
    this.place = null; // place in the pile queue from the `call` message (1 = at the pile)
    this.bills = []; // this request's bills as they came: {kind: "bill" | "fault", bill}
    this.done = null; // {reason, msg} once the request left the station
    this.ended = false; // it ended while the page was not connected
    this.error = null; // the latest refusal: {error, msg, opening}
    this.revised = false;
    this.attempt = 0;
    this.retryAt = 0;
    this.awaitingFirst = false;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of [...this.listeners]) listener(this);
  }

  get active() {
    return this.request !== null && this.done === null;
  }

  // -- opening -----------------------------------------------------------------------------
  start(mode, quantity, capacity) {
    this.close();
    this.reset();
    const params = { mode, quantity: String(quantity) };
    if (capacity) params.capacity = String(capacity);
    this.open(params);
  }

  /** Reopen the socket of a request the station has (after a reload or a lost network). */
  resume() {
    if (this.ws) return;
    this.done = null;
    this.ended = false;
    this.open({});
  }

  open(params) {
    this.status = this.attempt > 0 ? "reconnecting" : "connecting";
    this.awaitingFirst = true;
    const ws = new WebSocket(socketUrl("/user/charge", { token: this.token(), ...params }));
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      if (ws === this.ws) this.handle(JSON.parse(event.data));
    });
    ws.addEventListener("close", (event) => this.closed(ws, event.code));
    this.emit();
  }

  handle(message) {
    const opening = this.awaitingFirst;
    this.awaitingFirst = false;
    if (message.code === -1 || message.type === "error") {
      this.error = { error: message.error, msg: message.msg, opening };
      if (opening) this.status = "idle";
      this.emit();
      return;
    }
    this.status = "open";
    this.attempt = 0;
    this.lastType = message.type;
    if (message.type === "done") {
      this.done = { reason: message.reason, msg: message.msg || "" };
      this.emit();
      return;
    }
    const state = {};
    for (const field of STATE_FIELDS) if (field in message) state[field] = message[field];
    this.request = state;
    if (message.type === "call") this.place = message.place;
    else if (state.area === "queue" || state.area === "charging") this.place = state.ahead + 1;
    else this.place = null;
    if (message.type === "bill" || message.type === "fault") {
      this.bills.push({ kind: message.type, bill: message.bill });
    }
    if (message.type === "revised") {
      this.revised = true;
      this.error = null;
    }
    this.emit();
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.done || this.manual) {
      this.status = "idle";
      this.manual = false;
      this.emit();
      return;
    }
    if (code === CLOSE_BAD_TOKEN) {
      this.status = "idle";
      this.tokenRefused(this.error?.error || "bad_token");
      return;
    }
    if (code === CLOSE_BAD_INPUT || code === CLOSE_NOT_ALLOWED || code === CLOSE_REFUSED) {
      this.status = "idle"; // the opening was refused: the error says why
      this.emit();
      return;
    }
    this.schedule();
  }

  // -- reconnecting ------------------------------------------------------------------------
  schedule() {
    const base = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)];
    const delayMs = base * 1000 * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.status = "reconnecting";
    this.retryAt = Date.now() + delayMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), delayMs);
    this.emit();
  }

  reconnectNow() {
    if (this.status !== "reconnecting") return;
    clearTimeout(this.timer);
    this.reconnect();
  }

  async reconnect() {
    // Ask first: the request may have ended meanwhile, and reopening with its mode and
    // amount would then make a second one. Without them the station only resumes.
    let reply;
    try {
      reply = await api("GET", "/user/request", { token: this.token() });
    } catch (error) {
      if (error.status === 401) {
        this.status = "idle";
        this.tokenRefused(error.error);
      } else {
        this.schedule();
      }
      return;
    }
    if (reply.request === null) {
      this.status = "idle";
      this.ended = true;
      this.emit();
      return;
    }
    this.open({});
  }

  // -- operations --------------------------------------------------------------------------
  send(operation) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(operation));
    return true;
  }

  revise(change) {
    this.revised = false;
    this.error = null;
    return this.send({ operation: "revise", ...change });
  }

  cancel() {
    this.error = null;
    return this.send({ operation: "cancel" });
  }

  /** Forget the request on this page (logout, or a new charge after the bill). */
  close() {
    clearTimeout(this.timer);
    if (this.ws) {
      this.manual = true;
      this.ws.close(1000);
      this.ws = null;
    }
  }
}
