"""The HTTP endpoint next to gRPC (same process, same event loop): health, OAuth redirects and
provider webhooks. Handlers here translate HTTP to use cases, like ``service.api`` does for gRPC.
"""
