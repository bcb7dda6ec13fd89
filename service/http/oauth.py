"""GET /oauth/google/callback: where Google sends the business's browser after consent.

The state names the account (no API key travels with a browser redirect); the page says
plainly what happened and never echoes the code or any token.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from service.deadline import Deadline
from service.errors import CalendarError
from service.http.base import RouteFactory
from service.scheduling.google_oauth import CALLBACK_PATH

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto">
<h1>{title}</h1><p>{body}</p></body></html>"""


def _page(title: str, body: str, status: int) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=html.escape(body)), status)


class GoogleCallback(RouteFactory):
    def routes(self) -> list[BaseRoute]:
        return [Route(CALLBACK_PATH, self.callback, methods=["GET"])]

    async def callback(self, request: Request) -> HTMLResponse:
        params = request.query_params
        if params.get("error"):
            # The user pressed "Cancel" (access_denied) or Google refused the request.
            return _page(
                "Not connected",
                f"Google did not grant access ({params['error']}). You can close this window "
                "and start the connection again.",
                400,
            )
        try:
            connection = await self.app.google_oauth.complete(
                None, params.get("code", ""), params.get("state", ""), Deadline.after(15)
            )
        except CalendarError as error:
            return _page("Not connected", error.message, 400)
        who = connection.external_account or "your Google account"
        return _page("Connected", f"Connected {who}; you can close this window.", 200)
