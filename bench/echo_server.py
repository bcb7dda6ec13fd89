"""Bare grpc.aio echo server: the baseline the service's ListSlots latency is compared to.

``python -m bench.echo_server --port P --size N`` serves ``/bench.Echo/Echo``, a unary-unary
method that ignores its request and returns a fixed payload of exactly N bytes. It uses the
same stack as the service (grpc.aio, same process model) but has no interceptors, no protobuf
parsing and no database, so the difference between the two is what the service itself costs.

Prints ``echo listening on HOST:PORT`` once bound (``--port 0`` picks a free port) and stops
gracefully on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc

SERVICE = "bench.Echo"
METHOD = "Echo"
METHOD_PATH = f"/{SERVICE}/{METHOD}"


def make_handler(payload: bytes) -> grpc.GenericRpcHandler:
    """A generic handler for METHOD_PATH; no serializers, so bytes pass through untouched."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return payload

    # Request and response (de)serializers are left unset: gRPC then hands over raw bytes.
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(echo)
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler})


async def serve(host: str, port: int, size: int) -> None:
    # The same server options as the service, so both sides of the comparison bind alike.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((make_handler(b"\x00" * size),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise SystemExit(f"could not bind {host}:{port}")
    await server.start()
    print(f"echo listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--size", type=int, required=True, help="response payload bytes")
    args = parser.parse_args()
    if args.size < 0:
        parser.error("--size must be >= 0")
    asyncio.run(serve(args.host, args.port, args.size))


if __name__ == "__main__":
    main()
