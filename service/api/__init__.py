"""The gRPC edge: servicer, interceptors, proto <-> domain translation, error mapping.

No business rules live here; a handler reads its request, calls one use case, and writes the
response. Errors from the use cases become google.rpc.Status in ``errors``.
"""
