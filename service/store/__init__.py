"""Persistence: SQLAlchemy models, the database handle, migrations and credential encryption.

Nothing here knows about gRPC or business rules; the scheduling layer calls in.
"""
