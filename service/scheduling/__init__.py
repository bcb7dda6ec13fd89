"""The use cases: connect, agent settings, list slots, book, reschedule, cancel, appointments.

Loads rules, enforces plan and scopes, claims time, calls a provider, records the result.
Knows nothing of gRPC; raises ``service.errors``.
"""
