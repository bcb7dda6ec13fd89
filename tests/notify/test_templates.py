"""Confirmation templates: placeholder rules, HTML escaping, the RPCs, and use in real mail."""

from __future__ import annotations

import grpc
import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.errors import InvalidArgument
from service.notify import templates
from service.scheduling.app import CalendarApp
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, assert_error, book_request
from tests.notify.conftest import Notify
from tests.notify.smtp import SmtpServer, body_of


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("Hi {caller_email}", "unknown placeholder {caller_email}"),
        ("{caller_name.__class__}", "unknown placeholder {caller_name.__class__}"),
        ("{0}", "unknown placeholder {0}"),
        ("{}", "unknown placeholder {(positional)}"),
        ("{caller_name!r}", "takes no format or conversion"),
        ("{start_local:>40}", "takes no format or conversion"),
        ("Hi {caller_name", "malformed template"),
        ("Hi caller_name}", "malformed template"),
    ],
)
def test_bad_templates_are_refused_naming_the_field(template: str, complaint: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        templates.validate(
            templates.Templates(rescheduled=templates.Template(html=template)), "templates"
        )
    assert caught.value.field == "templates.rescheduled.html_body"
    assert complaint in caught.value.description


def test_every_default_template_uses_known_placeholders_only() -> None:
    templates.validate(templates.DEFAULTS)
    values = {name: f"<{name}>" for name in templates.PLACEHOLDERS}
    for kind in templates.API_KIND:
        t = templates.DEFAULTS.for_kind(kind)
        assert "<caller_name>" not in templates.render(t.html, values, as_html=True)
        assert "&lt;start_local&gt;" in templates.render(t.html, values, as_html=True)
        assert "<start_local>" in templates.render(t.text, values)


def test_literal_braces_and_overlong_text() -> None:
    ok = templates.Template(subject="{{not a placeholder}} {business_name}")
    templates.validate(templates.Templates(booked=ok))
    assert templates.render(ok.subject, {"business_name": "Acme"}) == "{not a placeholder} Acme"
    with pytest.raises(InvalidArgument) as caught:
        templates.validate(templates.Templates(cancelled=templates.Template(sms="x" * 321)))
    assert caught.value.field == "templates.cancelled.sms_body"


async def test_templates_rpcs_save_validate_and_fill_defaults(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    got = await server.stub.GetConfirmationTemplates(
        api.GetConfirmationTemplatesRequest(), metadata=tenant.auth
    )
    assert got.templates.booked.subject == templates.DEFAULTS.booked.subject
    assert not got.templates.HasField("update_time")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateConfirmationTemplates(
            api.UpdateConfirmationTemplatesRequest(
                templates=res.ConfirmationTemplates(
                    booked=res.ConfirmationTemplate(subject="Hi {caller_phone}")
                )
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "templates.booked.subject"

    saved = await server.stub.UpdateConfirmationTemplates(
        api.UpdateConfirmationTemplatesRequest(
            templates=res.ConfirmationTemplates(
                booked=res.ConfirmationTemplate(
                    subject="See you {start_local}, {caller_name}!",
                    html_body="<p>{caller_name} booked {event_type} via {agent_id}</p>",
                )
            ),
            request_id="6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
        ),
        metadata=tenant.auth,
    )
    assert saved.templates.booked.subject == "See you {start_local}, {caller_name}!"
    assert saved.templates.booked.text_body == templates.DEFAULTS.booked.text
    assert saved.templates.cancelled.sms_body == templates.DEFAULTS.cancelled.sms
    assert saved.templates.HasField("update_time")
    again = await server.stub.GetConfirmationTemplates(
        api.GetConfirmationTemplatesRequest(), metadata=tenant.auth
    )
    assert again.templates == saved.templates


async def test_saved_templates_word_the_email(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    await server.stub.UpdateConfirmationTemplates(
        api.UpdateConfirmationTemplatesRequest(
            templates=res.ConfirmationTemplates(
                booked=res.ConfirmationTemplate(
                    subject="See you {start_local}, {caller_name}!",
                    html_body="<p>{caller_name} booked {event_type} via {agent_id}</p>",
                )
            )
        ),
        metadata=tenant.auth,
    )
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Jo <b>", email="jo@example.com")),
        metadata=tenant.auth,
    )
    await notify.worker.run_once()
    [msg] = smtp.recorder.messages
    assert msg["Subject"] == "See you Tuesday, November 24 at 9:00 AM, Jo <b>!"
    assert body_of(msg, "html").rstrip() == "<p>Jo &lt;b&gt; booked Appointment via agent-1</p>"
    # Fields not saved keep the default wording.
    assert "is booked for Tuesday, November 24 at 9:00 AM" in body_of(msg, "plain")
