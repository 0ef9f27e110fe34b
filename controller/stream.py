"""The station's one ordered event stream: the rules' events and what follows from them.

Events are numbered in the order they happened and handed to every subscriber in that order.
An event published while subscribers are still being told of an earlier one waits its turn, so
every subscriber sees one and the same order. After each event, the stream's followers may add
the events that follow from it (a request's place in its line): they are told next.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Subscriber = Callable[[int, Any], None]


class EventStream:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._followers: list[Callable[[Any], None]] = []
        self._pending: deque[Any] = deque()
        self._delivering = False
        self.seq = 0  # the number of the last event handed out

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Be told of every event from now on, in order; returns the way to stop."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def follow(self, follower: Callable[[Any], None]) -> None:
        """Call `follower` after each event has been told; it may publish more."""
        self._followers.append(follower)

    def publish(self, event: Any) -> None:
        self._pending.append(event)
        if self._delivering:
            return  # a subscriber's command made it: it follows the event being told
        self._delivering = True
        try:
            while self._pending:
                current = self._pending.popleft()
                self.seq += 1
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(self.seq, current)
                    except Exception:  # one broken listener must not silence the others
                        log.exception("event subscriber failed on %s", type(current).__name__)
                for follower in self._followers:
                    follower(current)
        finally:
            self._delivering = False
