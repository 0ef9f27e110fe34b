// The operators' live feed (/admin/live): one WebSocket, reopened after a drop with backoff from
// 1 s doubling to 15 s, with jitter so that the dashboards of a restarted station do not all
// knock at the same instant. A refused token (4401) or a driver's token (4403) is not retried.
import { socketUrl } from "./api.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;
const REFUSED = new Set([4401, 4403]);

/** The wait before the attempt after `failures` failed ones: 1, 2, 4, 8, 15, 15 … s, ±20 %. */
export function backoffMs(failures) {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}

export class Feed {
  /**
   * token(): the operator's token; onMessage(msg): a snapshot or an event;
   * onLink(up): the socket is open (true) or lost (false); onRefused(error): the token is refused.
   */
  constructor({ token, onMessage, onLink, onRefused }) {
    Object.assign(this, { token, onMessage, onLink, onRefused });
    this.socket = null;
    this.failures = 0;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
  }

  open() {
    clearTimeout(this.timer);
    let refusal = null;
    const socket = new WebSocket(socketUrl("/admin/live", { token: this.token() }));
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "error") {
        refusal = msg.error;
        return;
      }
      if (msg.type === "snapshot") {
        this.failures = 0; // a snapshot means the station took us: start the backoff afresh
        this.onLink(true);
      }
      this.onMessage(msg);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (REFUSED.has(event.code)) {
        this.stopped = true;
        this.onRefused(refusal || (event.code === 4403 ? "not_operator" : "bad_token"));
        return;
      }
      this.onLink(false);
      this.timer = setTimeout(() => this.open(), backoffMs(this.failures));
      this.failures += 1;
    });
    // An error is always followed by a close, which decides what to do.
  }
}
