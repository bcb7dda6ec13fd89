"""End-to-end latency benchmark of the gRPC service against a bare grpc.aio echo baseline.

Run ``python -m bench`` (or ``make bench``). The pieces run as separate processes so that the
client, the service and the baseline never share an event loop or a GIL:

- ``bench.echo_server``: a bare grpc.aio server returning a fixed payload (the baseline);
- ``bench.load``: the load generator, one channel and C concurrent workers;
- ``bench.__main__``: the orchestrator that starts everything and prints the report.
"""
