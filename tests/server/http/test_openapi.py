"""docs/openapi.yaml is a valid OpenAPI document and describes exactly the served endpoints."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import sentinel

import yaml
from openapi_spec_validator import validate

from server.http.app import make_app
from server.http.handler import AppContext

SPEC = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"


def test_the_spec_is_valid_openapi() -> None:
    validate(yaml.safe_load(SPEC.read_text(encoding="utf-8")))


def test_every_http_route_is_described_and_nothing_else() -> None:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    app = make_app(AppContext(sentinel.accounts, sentinel.storage, sentinel.tz))  # type: ignore[arg-type]
    served = {rule.matcher.regex.pattern.rstrip("$") for rule in app.wildcard_router.rules}
    assert served == set(spec["paths"])
    for path, handler_rule in (
        (r.matcher.regex.pattern.rstrip("$"), r) for r in app.wildcard_router.rules
    ):
        methods = {m for m in ("get", "post") if m.upper() in _methods(handler_rule.target)}
        assert methods == set(spec["paths"][path]), path


def _methods(handler: type) -> set[str]:
    return {m for m in ("GET", "POST") if m.lower() in vars(handler)}
