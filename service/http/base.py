"""What every HTTP feature module builds on."""

from __future__ import annotations

from starlette.routing import BaseRoute

from service.scheduling.app import CalendarApp


class RouteFactory:
    """Builds a feature's routes for one app instance (no globals: tests run several apps)."""

    def __init__(self, app: CalendarApp) -> None:
        self.app = app

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError
