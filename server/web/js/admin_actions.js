// The operator's actions on the station: each one asked first (confirmDialog), then sent, then
// its result or the station's refusal in words. The dashboard does not second-guess the station
// (its picture may be a quarter of a second old): every button can be pressed, and what the
// rules refuse (a pile already on, a pile with no session) is said as the station said it.
import { confirmDialog, kwh, yuan } from "./dom.js";
import { t, refusal } from "./i18n.js";
import { ApiError } from "./api.js";

function billText(bill) {
  if (!bill) return "";
  return ` ${t("done.bill", { username: bill.username, quantity: kwh(bill.quantity), cost: yuan(bill.cost) })}`;
}

async function act(ctx, { question, okLabel, path, params, done }) {
  if (!(await confirmDialog(question, okLabel, t("action.cancel")))) return null;
  try {
    const reply = await ctx.call("POST", path, params);
    ctx.toast("ok", done(reply) + billText(reply.bill));
    return reply;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status !== 401 && err.error !== "not_operator") {
      ctx.toast("error", t("refused", { why: refusal(err.error, err.msg) }));
    }
    return null;
  }
}

export function switchOff(ctx, pile) {
  return act(ctx, {
    question: t("confirm.off", { pile: pile.name }),
    okLabel: t("action.off"),
    path: "/admin/piles/off",
    params: { stationId: pile.stationId },
    done: () => t("done.off", { pile: pile.name }),
  });
}

export function switchOn(ctx, pile) {
  return act(ctx, {
    question: t("confirm.on", { pile: pile.name }),
    okLabel: t("action.on"),
    path: "/admin/piles/on",
    params: { stationId: pile.stationId },
    done: () => t("done.on", { pile: pile.name }),
  });
}

export function stopSession(ctx, pile) {
  const head = pile.queue[0];
  return act(ctx, {
    question: t("confirm.stop", { pile: pile.name, username: head ? head.username : "—" }),
    okLabel: t("action.stop"),
    path: "/admin/piles/stop",
    params: { stationId: pile.stationId },
    done: () => t("done.stop", { pile: pile.name }),
  });
}

export function removeRequest(ctx, car) {
  return act(ctx, {
    question: t("confirm.remove", { username: car.username, queueNo: car.queueNo }),
    okLabel: t("action.remove"),
    path: "/admin/requests/remove",
    params: { username: car.username },
    done: (reply) => t("done.remove", { username: reply.username, queueNo: reply.queueNo }),
  });
}
