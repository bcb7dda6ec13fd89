"""Checks emulator traffic against a provider's official OpenAPI description.

Emulators call ``SpecValidator.check_request`` and ``check_response`` for every exchange, so an
emulator that drifts from the real API (a field renamed, a required field missing, a wrong
status) fails the tests instead of hiding an adapter bug. The specs live in
``../shared/provider-specs`` beside the repository (``CALENDAR_PROVIDER_SPECS`` overrides it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def spec_dir() -> Path:
    configured = os.environ.get("CALENDAR_PROVIDER_SPECS")
    return Path(configured) if configured else ROOT.parent / "shared" / "provider-specs"


@cache
def load_spec(name: str) -> dict[str, Any]:
    path = spec_dir() / name
    if not path.exists():
        raise FileNotFoundError(
            f"provider spec {path} is missing; CI provides ../shared beside the repository "
            "(or set CALENDAR_PROVIDER_SPECS)"
        )
    text = path.read_text()
    loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


class SpecViolation(AssertionError):
    """An emulator request or response does not match the provider's spec."""


def _nullable_to_jsonschema(schema: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable: true`` means "or null"; ``oneOf`` is read as
    ``anyOf`` because Cal.com's alternatives overlap (a plain booking input also matches the
    recurring and instant shapes) and its server picks one by the event type, not the body."""
    if isinstance(schema, list):
        return [_nullable_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {("anyOf" if k == "oneOf" else k): _nullable_to_jsonschema(v) for k, v in schema.items()}
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


class SpecValidator:
    def __init__(self, spec_name: str, *, server_prefix: str = "") -> None:
        self.spec = load_spec(spec_name)
        self._prefix = server_prefix
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template in self.spec.get("paths", {}):
            pattern = re.sub(r"\{[^/}]+\}", r"[^/]+", template)
            self._routes.append((re.compile(f"^{re.escape(server_prefix)}{pattern}$"), template))
        # Concrete paths first, so /v2/bookings/{uid}/cancel beats /v2/bookings/{uid}.
        self._routes.sort(key=lambda r: (r[1].count("{"), -len(r[1])))
        self._resolver_schema = _nullable_to_jsonschema(self.spec)

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        for pattern, template in self._routes:
            if pattern.match(path):
                ops = self.spec["paths"][template]
                op = ops.get(method.lower())
                if op is not None:
                    return template, op
        raise SpecViolation(f"{method} {path} is not an operation of the spec")

    def _schema(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        # Validate against the whole (null-converted) document so local $refs resolve.
        converted = _nullable_to_jsonschema(dict(schema))
        return {**converted, "components": self._resolver_schema.get("components", {})}

    def _validate(self, instance: Any, schema: Mapping[str, Any], what: str) -> None:
        try:
            jsonschema.validate(instance, self._schema(schema))
        except jsonschema.ValidationError as error:
            path = "/".join(str(p) for p in error.absolute_path)
            raise SpecViolation(f"{what}: {error.message} (at {path or 'top level'})") from error

    def check_request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """Validates parameters and JSON body; returns the operation for further checks."""
        template, op = self.operation(method, path)
        params = list(op.get("parameters", [])) + list(
            self.spec["paths"][template].get("parameters", [])
        )
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        for param in params:
            where, name = param.get("in"), param.get("name", "")
            if where == "query":
                present = query is not None and name in query
            elif where == "header":
                present = name.lower() in lowered
            else:
                continue
            if param.get("required") and not present:
                raise SpecViolation(
                    f"{method} {template}: required {where} parameter {name!r} missing"
                )
            if where == "header" and present and "schema" in param:
                self._validate(lowered[name.lower()], param["schema"], f"header {name}")
        request_body = op.get("requestBody")
        if request_body is not None:
            content = request_body.get("content", {}).get("application/json")
            if body is None and request_body.get("required"):
                raise SpecViolation(f"{method} {template}: JSON body required")
            if content is not None and body is not None and "schema" in content:
                self._validate(body, content["schema"], f"{method} {template} request body")
        return op

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        """Validates a documented status's JSON body; an undocumented 2xx is a violation."""
        template, op = self.operation(method, path)
        responses = op.get("responses", {})
        spec = responses.get(str(status)) or responses.get("default")
        if spec is None:
            if 200 <= status < 300:
                raise SpecViolation(f"{method} {template}: status {status} is not documented")
            return  # Error statuses are mostly undocumented in these specs; NOTES.md covers them.
        content = spec.get("content", {}).get("application/json")
        if content is not None and "schema" in content and body is not None:
            self._validate(body, content["schema"], f"{method} {template} response {status}")
