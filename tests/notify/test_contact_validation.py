"""Caller contact data is checked at Book, before anything is booked; phones stored as E.164."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import func, select

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.errors import InvalidArgument
from service.model import Caller
from service.scheduling.app import CalendarApp
from service.scheduling.validation import validate_caller
from service.store import tables as t
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, assert_error, book_request


@pytest.mark.parametrize(
    ("caller", "field"),
    [
        (res.Caller(name="Pat", email="pat@@example.com"), "caller.email"),
        (res.Caller(name="Pat", email="pat@example"), "caller.email"),
        (res.Caller(name="Pat", email="pat example@example.com"), "caller.email"),
        (res.Caller(name="Pat", phone="+1 212 555"), "caller.phone"),
        (res.Caller(name="Pat", phone="+999 1234567"), "caller.phone"),
        (res.Caller(name="Pat", phone="555-CALL-NOW-PLEASE"), "caller.phone"),
    ],
)
async def test_bad_contact_data_is_refused_before_anything_is_booked(
    server: Server, app: CalendarApp, tenant: Tenant, caller: res.Caller, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, caller=caller), metadata=tenant.auth
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == field
    async with app.deps.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(t.Appointment)) == 0
        assert await session.scalar(select(func.count()).select_from(t.OutboxMessage)) == 0


@pytest.mark.parametrize(
    ("given", "region", "stored"),
    [
        ("(212) 555-0100", "US", "+12125550100"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+1.212.555.0100", "US", "+12125550100"),
    ],
)
def test_phones_are_stored_in_e164(given: str, region: str, stored: str) -> None:
    caller = validate_caller(Caller(name="Pat", phone=given), default_region=region)
    assert caller.phone == stored


def test_email_keeps_its_local_part_and_lowercases_the_domain() -> None:
    caller = validate_caller(Caller(name="Pat", email=" Pat.Smith@Example.COM "))
    assert caller.email == "Pat.Smith@example.com"
    with pytest.raises(InvalidArgument) as caught:
        validate_caller(Caller(name="Pat", email="pat@-example.com"))
    assert caught.value.field == "caller.email"


async def test_book_stores_the_normalised_phone(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Pat", phone="212-555-0100")),
        metadata=tenant.auth,
    )
    assert booked.appointment.caller.phone == "+12125550100"


async def test_business_email_is_validated_and_kept(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    mask = field_mask_pb2.FieldMask(paths=["confirmations"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(
                settings=res.AgentCalendarSettings(
                    agent_id=tenant.agent_id,
                    confirmations=res.ConfirmationChannels(email=True, business_email="desk@"),
                ),
                update_mask=mask,
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "settings.confirmations.business_email"
    saved = await server.stub.UpdateAgentCalendarSettings(
        api.UpdateAgentCalendarSettingsRequest(
            settings=res.AgentCalendarSettings(
                agent_id=tenant.agent_id,
                confirmations=res.ConfirmationChannels(
                    email=True, calendar_invite=True, business_email="desk@example.com"
                ),
            ),
            update_mask=mask,
        ),
        metadata=tenant.auth,
    )
    assert saved.settings.confirmations.business_email == "desk@example.com"
    got = await server.stub.GetAgentCalendarSettings(
        api.GetAgentCalendarSettingsRequest(agent_id=tenant.agent_id), metadata=tenant.auth
    )
    assert got.settings.confirmations.business_email == "desk@example.com"


def test_settings_documents_without_business_email_still_read() -> None:
    from service.model import AgentSettings
    from service.scheduling.settings_codec import from_document, to_document

    document = to_document(AgentSettings(agent_id="a"))
    del document["confirmations"]["business_email"]
    assert from_document("a", document).confirmations.business_email == ""
