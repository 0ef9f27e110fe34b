"""The configuration's sections that the server's components own: the station's parser accepts
them and leaves them to these components (the replay imports this and none of their parsers)."""

from __future__ import annotations

COMPONENT_SECTIONS = frozenset({"server", "accounts", "ocpp", "metrics"})
