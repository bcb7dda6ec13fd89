"""The validator itself: it must catch what an emulator could get wrong."""

from __future__ import annotations

import pytest

from tests.emulators.openapi import SpecValidator, SpecViolation


@pytest.fixture(scope="module")
def calcom() -> SpecValidator:
    return SpecValidator("calcom-v2.openapi.json")


def test_known_operation_and_valid_body_pass(calcom: SpecValidator) -> None:
    calcom.check_request(
        "POST",
        "/v2/bookings",
        headers={"cal-api-version": "2024-08-13"},
        body={
            "start": "2026-11-24T14:00:00Z",
            "eventTypeId": 1,
            "attendee": {"name": "Pat", "timeZone": "America/New_York"},
        },
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "message"),
    [
        ("POST", "/v2/bookings", {}, {"start": "x"}, "cal-api-version"),
        (
            "POST",
            "/v2/bookings",
            {"cal-api-version": "2024-08-13"},
            {"start": "2026-11-24T14:00:00Z", "eventTypeId": 1},
            "request body",
        ),
        ("GET", "/v2/no-such-thing", {}, None, "not an operation"),
    ],
)
def test_violations_are_reported(
    calcom: SpecValidator,
    method: str,
    path: str,
    headers: dict[str, str],
    body: object,
    message: str,
) -> None:
    with pytest.raises(SpecViolation, match=message):
        calcom.check_request(method, path, headers=headers, body=body)


def test_responses_are_checked(calcom: SpecValidator) -> None:
    with pytest.raises(SpecViolation, match="response 200"):
        calcom.check_response("GET", "/v2/me", 200, {"status": "success", "data": {"id": "x"}})
    with pytest.raises(SpecViolation, match="not documented"):
        calcom.check_response("GET", "/v2/me", 299, {})


def test_calendly_yaml_loads() -> None:
    calendly = SpecValidator("calendly-v2.openapi.yaml")
    template, _ = calendly.operation("POST", "/scheduled_events/abc/cancellation")
    assert template == "/scheduled_events/{uuid}/cancellation"
