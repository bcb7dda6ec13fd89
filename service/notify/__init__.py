"""Confirmations: the outbox rows written with a booking, and the worker that delivers them
(email with an .ics invite, SMS). Delivery is keyed by the outbox row, so nothing is sent twice.
"""
