"""What can go wrong, as the user reads it: the exit codes and a sentence for every refusal the
station sends (its stable `error` keys, PROTOCOL.md "General")."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """The exit codes, for scripts (docs/client.md, `charge-client --help`)."""

    OK = 0
    REFUSED = 1  # the station answered with a refusal; its message is shown
    USAGE = 2  # bad arguments, no station address, an unreadable CA file (argparse uses 2 too)
    AUTH = 3  # not logged in, token expired or rejected, wrong username or password
    UNREACHABLE = 4  # no answer: refused, timed out, TLS verification failed, connection lost
    NO_REQUEST = 5  # status, revise, cancel: there is no request in the station
    ENDED = 6  # charge: the request ended without completing (cancelled, removed, no show)
    INTERRUPTED = 130  # charge: Ctrl-C, the request left in the station; other commands: Ctrl-C


EXIT_CODES_HELP = """exit codes:
  0    done
  1    the station refused (its message is shown)
  2    usage error: bad arguments, no station address, an unusable CA file
  3    not logged in, login expired or rejected, wrong username or password
  4    cannot reach the station: connection refused, timeout, TLS certificate
       not verified, connection lost (the message says which)
  5    status, revise, cancel: you have no request in the station
  6    charge: the request ended without completing (cancelled, removed by an
       operator, or the car did not plug in in time)
  130  interrupted (Ctrl-C); for charge: the request was left in the station"""


class Failure(Exception):
    """Stops the command: `message` on standard error, the process exits with `code`."""

    def __init__(
        self, code: Exit, message: str, hint: str | None = None, error: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.error = error  # the station's error key, for a refusal


LOGIN_AGAIN = "log in again: charge-client login USERNAME"

# error key -> (exit code, what the user reads, what to do). The station's own sentence is
# appended when it carries the particulars (a limit, a number of seconds, a pile's name).
_AUTH = Exit.AUTH
_REF = Exit.REFUSED
REFUSALS: dict[str, tuple[Exit, str, str | None]] = {
    # accounts
    "bad_credentials": (_AUTH, "wrong username or password", None),
    "bad_token": (_AUTH, "the station does not accept your login", LOGIN_AGAIN),
    "token_expired": (_AUTH, "your login has expired", LOGIN_AGAIN),
    "token_revoked": (
        _AUTH,
        "your login was ended at the station (a new password or a revocation)",
        LOGIN_AGAIN,
    ),
    "not_a_driver": (
        _REF,
        "an operator's account cannot charge",
        "log in with a driver's account: charge-client login USERNAME",
    ),
    "missing_token": (_AUTH, "not logged in", LOGIN_AGAIN),
    "too_many_attempts": (_REF, "too many failed attempts from this address", None),
    "bad_username": (_REF, "the station does not accept this username", None),
    "bad_password": (_REF, "the station does not accept this password", None),
    "bad_code": (
        _REF,
        "the registration code is unknown, used or expired",
        "ask the station's operator for a new one",
    ),
    "username_taken": (_REF, "this username is taken", "choose another"),
    "bad_role": (_REF, "no such role", None),
    # the charging request
    "bad_mode": (_REF, "the station does not accept this mode", "use fast or common"),
    "bad_quantity": (_REF, "the station does not accept this amount", None),
    "bad_capacity": (_REF, "the station does not accept this battery capacity", None),
    "waiting_area_full": (_REF, "the waiting area is full", "try again later"),
    "already_queued": (
        _REF,
        "you already have a request in the station",
        "charge-client status shows it",
    ),
    "not_in_waiting_area": (
        _REF,
        "a request can be changed only while it is in the waiting area",
        "cancel it and ask again: charge-client cancel",
    ),
    "changes_disabled": (
        _REF,
        "the station does not take changes under its dispatch mode",
        "cancel and ask again: charge-client cancel",
    ),
    "nothing_to_revise": (_REF, "nothing to change", None),
    "not_in_station": (_REF, "there is no such request in the station", None),
    "unknown_operation": (_REF, "the station does not know this operation", None),
    "message_too_large": (_REF, "the message was too large for the station", None),
    "bad_json": (_REF, "the station could not read the request", None),
    # the operator API
    "not_operator": (
        _REF,
        "operators only",
        "log in with an operator's account: charge-client login USERNAME",
    ),
    "station_not_ready": (_REF, "the station is not running its piles yet", "try again shortly"),
    "unknown_pile": (_REF, "no such pile", "charge-client piles lists them"),
    "bad_stationId": (_REF, "a pile is named by its number", "charge-client piles lists them"),
    "pile_not_working": (_REF, "the pile is not working", None),
    "pile_working": (_REF, "the pile is already working", None),
    "pile_faulted": (_REF, "the pile is faulted; it comes back when it is repaired", None),
    "no_session": (_REF, "the pile is not charging", None),
    "bad_period": (_REF, "the period must be day, week or month", None),
    "bad_date": (_REF, "the date must be YYYY-MM-DD, from 1970 to 9998", None),
    "bad_hours": (_REF, "the validity in hours is out of range", None),
    "bad_num": (_REF, "the number of bills must be a whole number from 1", None),
    # the HTTP layer
    "not_found": (_REF, "the station has no such endpoint (is it an older version?)", None),
    "method_not_allowed": (_REF, "the station does not take this request method", None),
    "body_too_large": (_REF, "the request was too large for the station", None),
    "url_too_long": (_REF, "the request was too large for the station", None),
    "headers_too_large": (_REF, "the request was too large for the station", None),
    "too_deep": (_REF, "the station could not read the request", None),
    "internal": (_REF, "the station failed with an internal error", "tell its operator"),
}
# Keys whose station sentence holds the particulars the user needs.
_WITH_DETAIL = {
    "too_many_attempts",
    "bad_username",
    "bad_password",
    "bad_quantity",
    "bad_capacity",
    "waiting_area_full",
    "pile_not_working",
    "pile_working",
    "pile_faulted",
    "no_session",
    "unknown_pile",
    "bad_hours",
}


def refusal(error: str, station_msg: str) -> Failure:
    """The failure for a station's refusal `{"code": -1, "error": error, "msg": station_msg}`."""
    known = REFUSALS.get(error)
    if known is None:
        # A key this client does not know (a newer station): the station's own words.
        return Failure(Exit.REFUSED, f"the station refused: {station_msg} [{error}]", error=error)
    code, text, hint = known
    if error in _WITH_DETAIL and station_msg:
        text = f"{text}: {station_msg}"
    return Failure(code, f"{text} [{error}]", hint, error)
