"""The one shape of every refusal the API answers: an HTTP status, a stable key, a sentence."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as {"code": -1, "msg": msg, "error": error} with HTTP status `status`."""

    def __init__(self, status: int, error: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.error = error
        self.msg = msg
