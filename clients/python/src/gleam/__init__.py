"""gleam namespace."""
