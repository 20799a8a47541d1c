"""A TCP proxy that adds a network's round trip to loopback: for benches only.

    python benches/delay_proxy.py --rtt 20 LISTEN_ADDRESS:PORT=TARGET_ADDRESS:PORT ...

Each listening address forwards to its target; every chunk waits half the round trip
(``--rtt`` ms) before it is passed on, in each direction, and the chunks of a direction
keep their order. This machine's kernel has no ``netem``, so a bench that wants to see the
cost of round trips, not of CPU, puts this in front of its hosts. It prints ``ready`` once
every address listens, and stops on SIGTERM or when its input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# The connections' tasks, held: the streams hold them only weakly, and one whose client
# side closed first would be collected while it waits for the other side ("Task was
# destroyed but it is pending!" on the bench's terminal).
_connections: set[asyncio.Task[None]] = set()


def _handler(target: tuple[str, int], delay: float) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        _connections.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            _connections.discard(task)
            return
        try:
            await asyncio.gather(_pump(reader, up_writer, delay), _pump(up_reader, writer, delay))
        except (OSError, asyncio.CancelledError):
            pass  # one side went away, or the proxy stops: close both
        finally:
            writer.close()
            up_writer.close()
            _connections.discard(task)

    return handle


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(rtt_ms: float, routes: list[str]) -> None:
    delay = rtt_ms / 2000.0
    servers = []
    for route in routes:
        listen, _, target = route.partition("=")
        host, port = _address(listen)
        handler = _handler(_address(target), delay)
        servers.append(await asyncio.start_server(handler, host, port, backlog=1024))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: None if sys.stdin.read(1) else stop.set())
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, required=True, help="round trip to add, in ms")
    parser.add_argument("routes", nargs="+", help="LISTEN:PORT=TARGET:PORT")
    args = parser.parse_args()
    asyncio.run(main(args.rtt, args.routes))
