"""CalendarService: each handler reads its request, calls one use case, writes the response."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import calendar_service_pb2_grpc as api_grpc
from gleam.calendar.v1 import resources_pb2 as res
from service.api import convert
from service.api.interceptors import current_deadline, current_principal
from service.errors import InvalidArgument, PlanRequired
from service.model import Plan, ProviderKind
from service.notify import templates
from service.scheduling.app import CalendarApp
from service.scheduling.appointments import list_appointments
from service.scheduling.availability import SlotQuery
from service.scheduling.booking import BookCommand, CancelCommand, RescheduleCommand

Context = grpc.aio.ServicerContext[Any, Any]


def _account() -> str:
    return current_principal().account_id


def _apply_mask(
    current: res.AgentCalendarSettings,
    update: res.AgentCalendarSettings,
    mask: field_mask_pb2.FieldMask,
) -> res.AgentCalendarSettings:
    """AIP-134: an empty mask or "*" replaces everything; otherwise only the named paths."""
    if not mask.paths or list(mask.paths) == ["*"]:
        merged = res.AgentCalendarSettings()
        merged.CopyFrom(update)
        return merged
    for i, path in enumerate(mask.paths):
        probe = field_mask_pb2.FieldMask(paths=[path])
        if not probe.IsValidForDescriptor(res.AgentCalendarSettings.DESCRIPTOR):
            raise InvalidArgument(f"update_mask.paths[{i}]", f"unknown field path {path!r}")
    merged = res.AgentCalendarSettings()
    merged.CopyFrom(current)
    mask.MergeMessage(update, merged, replace_message_field=True, replace_repeated_field=True)
    return merged


def _template_pb(m: templates.Template) -> res.ConfirmationTemplate:
    return res.ConfirmationTemplate(
        subject=m.subject, text_body=m.text, html_body=m.html, sms_body=m.sms
    )


def _templates_pb(m: templates.Templates) -> res.ConfirmationTemplates:
    out = res.ConfirmationTemplates(
        booked=_template_pb(m.booked),
        rescheduled=_template_pb(m.rescheduled),
        cancelled=_template_pb(m.cancelled),
    )
    if m.updated_at is not None:
        out.update_time.CopyFrom(convert.ts(m.updated_at))
    return out


def _template_from_pb(p: res.ConfirmationTemplate) -> templates.Template:
    return templates.Template(subject=p.subject, text=p.text_body, html=p.html_body, sms=p.sms_body)


def _templates_from_pb(p: res.ConfirmationTemplates) -> templates.Templates:
    return templates.Templates(
        booked=_template_from_pb(p.booked),
        rescheduled=_template_from_pb(p.rescheduled),
        cancelled=_template_from_pb(p.cancelled),
    )


class CalendarServicer(api_grpc.CalendarServiceServicer):
    def __init__(self, app: CalendarApp) -> None:
        self._app = app

    # Connections -------------------------------------------------------------------------

    async def Connect(self, request: api.ConnectRequest, context: Context) -> api.ConnectResponse:
        which = request.WhichOneof("credentials")
        if which is None:
            raise InvalidArgument(
                "credentials",
                "give exactly one of calcom, calendly, "
                "google_authorization_code, google_service_account or builtin",
            )
        if which in ("calcom", "calendly"):
            kind, secret = (
                (ProviderKind.CALCOM, request.calcom.api_key)
                if which == "calcom"
                else (ProviderKind.CALENDLY, request.calendly.access_token)
            )
            conn = await self._app.connections.connect_external(
                _account(),
                kind,
                secret,
                request.display_name,
                request_id=request.request_id,
                deadline=current_deadline(),
            )
            return api.ConnectResponse(connection=convert.connection(conn))
        if which == "google_authorization_code":
            grant = request.google_authorization_code
            conn = await self._app.google_oauth.complete(
                _account(), grant.code, grant.state, current_deadline()
            )
            return api.ConnectResponse(connection=convert.connection(conn))
        if which == "google_service_account":
            if current_principal().plan is not Plan.ENTERPRISE:
                raise PlanRequired(current_principal().plan.value, [Plan.ENTERPRISE.value])
            sa = request.google_service_account
            conn = await self._app.google_oauth.connect_service_account(
                _account(), sa.service_account_json, sa.subject, current_deadline()
            )
            return api.ConnectResponse(connection=convert.connection(conn))
        conn = await self._app.connections.connect_builtin(
            _account(),
            request.display_name,
            request.builtin.calendar_name,
            request_id=request.request_id,
            deadline=current_deadline(),
        )
        return api.ConnectResponse(connection=convert.connection(conn))

    async def GetGoogleConsentUrl(
        self, request: api.GetGoogleConsentUrlRequest, context: Context
    ) -> api.GetGoogleConsentUrlResponse:
        consent = await self._app.google_oauth.consent_url(
            _account(),
            all_editable_calendars=request.all_editable_calendars,
            login_hint=request.login_hint,
        )
        return api.GetGoogleConsentUrlResponse(
            consent_url=consent.url, state=consent.state, expire_time=convert.ts(consent.expires_at)
        )

    async def ListConnections(
        self, request: api.ListConnectionsRequest, context: Context
    ) -> api.ListConnectionsResponse:
        items, token = await self._app.connections.list_connections(
            _account(), request.page_size, request.page_token
        )
        return api.ListConnectionsResponse(
            connections=[convert.connection(c) for c in items], next_page_token=token
        )

    async def GetConnection(
        self, request: api.GetConnectionRequest, context: Context
    ) -> api.GetConnectionResponse:
        conn = await self._app.connections.get(_account(), request.connection_id)
        return api.GetConnectionResponse(connection=convert.connection(conn))

    async def Disconnect(
        self, request: api.DisconnectRequest, context: Context
    ) -> api.DisconnectResponse:
        conn = await self._app.connections.disconnect(_account(), request.connection_id)
        return api.DisconnectResponse(connection=convert.connection(conn))

    async def TestConnection(
        self, request: api.TestConnectionRequest, context: Context
    ) -> api.TestConnectionResponse:
        result = await self._app.connections.test(
            _account(), request.connection_id, current_deadline()
        )
        c = result.check
        return api.TestConnectionResponse(
            ok=c.ok,
            connection=convert.connection(result.connection),
            can_read_availability=c.can_read_availability,
            can_create_events=c.can_create_events,
            can_modify_events=c.can_modify_events,
            detail=c.detail,
            latency=convert.dur(result.latency),
        )

    async def ListCalendars(
        self, request: api.ListCalendarsRequest, context: Context
    ) -> api.ListCalendarsResponse:
        page = await self._app.connections.list_calendars(
            _account(),
            request.connection_id,
            request.page_size,
            request.page_token,
            current_deadline(),
        )
        return api.ListCalendarsResponse(
            calendars=[convert.calendar(c) for c in page.calendars],
            next_page_token=page.next_page_token,
        )

    async def ListEventTypes(
        self, request: api.ListEventTypesRequest, context: Context
    ) -> api.ListEventTypesResponse:
        types = await self._app.connections.list_event_types(
            _account(), request.connection_id, current_deadline()
        )
        return api.ListEventTypesResponse(event_types=[convert.event_type(e) for e in types])

    async def CreateEventType(
        self, request: api.CreateEventTypeRequest, context: Context
    ) -> api.CreateEventTypeResponse:
        created = await self._app.connections.create_event_type(
            _account(),
            request.connection_id,
            convert.from_event_type(request.event_type),
            request_id=request.request_id,
            deadline=current_deadline(),
        )
        return api.CreateEventTypeResponse(event_type=convert.event_type(created))

    # Agent settings ----------------------------------------------------------------------

    async def GetAgentCalendarSettings(
        self, request: api.GetAgentCalendarSettingsRequest, context: Context
    ) -> api.GetAgentCalendarSettingsResponse:
        settings = await self._app.agents.get_settings(_account(), request.agent_id)
        return api.GetAgentCalendarSettingsResponse(settings=convert.settings(settings))

    async def UpdateAgentCalendarSettings(
        self, request: api.UpdateAgentCalendarSettingsRequest, context: Context
    ) -> api.UpdateAgentCalendarSettingsResponse:
        agent_id = request.settings.agent_id
        if not agent_id:
            raise InvalidArgument("settings.agent_id", "is required")
        current = await self._app.agents.get_settings(_account(), agent_id)
        merged = _apply_mask(convert.settings(current), request.settings, request.update_mask)
        merged.agent_id = agent_id
        saved = await self._app.agents.save_settings(_account(), convert.from_settings(merged))
        return api.UpdateAgentCalendarSettingsResponse(settings=convert.settings(saved))

    # Confirmation templates --------------------------------------------------------------

    async def GetConfirmationTemplates(
        self, request: api.GetConfirmationTemplatesRequest, context: Context
    ) -> api.GetConfirmationTemplatesResponse:
        loaded = await templates.load(self._app.deps, _account())
        return api.GetConfirmationTemplatesResponse(templates=_templates_pb(loaded))

    async def UpdateConfirmationTemplates(
        self, request: api.UpdateConfirmationTemplatesRequest, context: Context
    ) -> api.UpdateConfirmationTemplatesResponse:
        saved = await templates.save(
            self._app.deps, _account(), _templates_from_pb(request.templates)
        )
        return api.UpdateConfirmationTemplatesResponse(templates=_templates_pb(saved))

    async def PrepareCall(
        self, request: api.PrepareCallRequest, context: Context
    ) -> api.PrepareCallResponse:
        fresh = await self._app.availability.prepare(
            _account(), request.agent_id, request.days, current_deadline()
        )
        return api.PrepareCallResponse(warmed=True, data_age=convert.dur(fresh.age))

    # Availability and booking ------------------------------------------------------------

    async def ListSlots(
        self, request: api.ListSlotsRequest, context: Context
    ) -> api.ListSlotsResponse:
        which = request.WhichOneof("range")
        query = SlotQuery(
            agent_id=request.agent_id,
            event_type_id=request.event_type_id,
            range_start=convert.from_ts(request.time_range.start_time, "time_range.start_time")
            if which == "time_range"
            else None,
            range_end=convert.from_ts(request.time_range.end_time, "time_range.end_time")
            if which == "time_range"
            else None,
            local_date=convert.from_date(request.date, "date") if which == "date" else None,
            caller_time_zone=request.caller_time_zone,
            requested=convert.from_ts(request.requested_time, "requested_time")
            if request.HasField("requested_time")
            else None,
            max_results=request.max_results,
        )
        answer = await self._app.availability.list_slots(_account(), query, current_deadline())
        return convert.slots_response(answer)

    async def Book(self, request: api.BookRequest, context: Context) -> api.BookResponse:
        if not request.HasField("caller"):
            raise InvalidArgument("caller", "is required")
        appointment = await self._app.booking.book(
            _account(),
            BookCommand(
                agent_id=request.agent_id,
                event_type_id=request.event_type_id,
                start=convert.from_ts(request.start_time, "start_time"),
                caller=convert.caller(request.caller),
                notes=request.notes,
                request_id=request.request_id,
                call_id=request.call_id,
            ),
            current_deadline(),
        )
        return api.BookResponse(
            appointment=convert.appointment(appointment),
            slot=convert.appointment_slot(appointment),
        )

    async def Reschedule(
        self, request: api.RescheduleRequest, context: Context
    ) -> api.RescheduleResponse:
        appointment = await self._app.booking.reschedule(
            _account(),
            RescheduleCommand(
                appointment_id=request.appointment_id,
                agent_id=request.agent_id,
                start=convert.from_ts(request.start_time, "start_time"),
                request_id=request.request_id,
                call_id=request.call_id,
            ),
            current_deadline(),
        )
        return api.RescheduleResponse(
            appointment=convert.appointment(appointment),
            slot=convert.appointment_slot(appointment),
        )

    async def Cancel(self, request: api.CancelRequest, context: Context) -> api.CancelResponse:
        appointment = await self._app.booking.cancel(
            _account(),
            CancelCommand(
                appointment_id=request.appointment_id,
                agent_id=request.agent_id,
                reason=request.reason,
                request_id=request.request_id,
                call_id=request.call_id,
            ),
            current_deadline(),
        )
        return api.CancelResponse(appointment=convert.appointment(appointment))

    async def GetAppointment(
        self, request: api.GetAppointmentRequest, context: Context
    ) -> api.GetAppointmentResponse:
        appointment = await self._app.booking.get(_account(), request.appointment_id)
        return api.GetAppointmentResponse(appointment=convert.appointment(appointment))

    async def ListAppointments(
        self, request: api.ListAppointmentsRequest, context: Context
    ) -> api.ListAppointmentsResponse:
        has_range = request.HasField("time_range")
        items, token = await list_appointments(
            self._app.deps,
            _account(),
            agent_id=request.agent_id,
            start=convert.from_ts(request.time_range.start_time, "time_range.start_time")
            if has_range
            else None,
            end=convert.from_ts(request.time_range.end_time, "time_range.end_time")
            if has_range
            else None,
            statuses=convert.statuses(list(request.statuses)),
            size=request.page_size,
            token=request.page_token,
        )
        return api.ListAppointmentsResponse(
            appointments=[convert.appointment(a) for a in items], next_page_token=token
        )

    # Busy blocks -------------------------------------------------------------------------

    async def CreateBusyBlock(
        self, request: api.CreateBusyBlockRequest, context: Context
    ) -> api.CreateBusyBlockResponse:
        block = await self._app.connections.create_busy_block(
            _account(),
            convert.from_busy_block(request.busy_block),
            request_id=request.request_id,
            deadline=current_deadline(),
        )
        return api.CreateBusyBlockResponse(busy_block=convert.busy_block(block))

    async def ListBusyBlocks(
        self, request: api.ListBusyBlocksRequest, context: Context
    ) -> api.ListBusyBlocksResponse:
        blocks, token = await self._app.connections.list_busy_blocks(
            _account(),
            request.connection_id,
            request.calendar_id,
            convert.from_ts(request.time_range.start_time, "time_range.start_time"),
            convert.from_ts(request.time_range.end_time, "time_range.end_time"),
            request.page_size,
            request.page_token,
        )
        return api.ListBusyBlocksResponse(
            busy_blocks=[convert.busy_block(b) for b in blocks], next_page_token=token
        )

    async def DeleteBusyBlock(
        self, request: api.DeleteBusyBlockRequest, context: Context
    ) -> api.DeleteBusyBlockResponse:
        await self._app.connections.delete_busy_block(_account(), request.busy_block_id)
        return api.DeleteBusyBlockResponse()
