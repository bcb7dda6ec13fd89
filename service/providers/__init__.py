"""Calendar providers behind one Protocol (``base.CalendarProvider``).

Each adapter maps its own transport and provider errors to ``service.errors`` in one place.
"""
