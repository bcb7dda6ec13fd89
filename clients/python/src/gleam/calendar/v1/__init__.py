"""Generated gleam.calendar.v1 messages and stubs (make proto)."""
