"""Builds the provider adapter for a stored connection."""

from __future__ import annotations

from service.errors import FailedPrecondition
from service.model import ProviderKind
from service.providers.base import CalendarProvider
from service.providers.builtin import BuiltinProvider
from service.scheduling.deps import Deps
from service.store import tables as t


def provider_for(deps: Deps, row: t.Connection) -> CalendarProvider:
    if deps.provider_factory is not None:
        return deps.provider_factory(deps, row)
    return default_provider(deps, row)


def default_provider(deps: Deps, row: t.Connection) -> CalendarProvider:
    kind = ProviderKind(row.provider)
    if kind is ProviderKind.BUILTIN:
        return BuiltinProvider(deps.db, row.account_id, row.id)
    raise FailedPrecondition(
        f"no {kind.value} adapter is configured on this server",
        reason="PROVIDER_NOT_CONFIGURED",
        metadata={"provider": kind.value, "setting": "adapter"},
    )
