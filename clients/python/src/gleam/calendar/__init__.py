"""gleam-calendar client: generated stubs in v1, a typed wrapper in client."""
