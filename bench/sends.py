"""The hub's write path per delivery against a bare loop of ``socket.send``, in one process.

    .venv/bin/python bench/sends.py                  # 1,000 sockets, 30 events, 3 rounds
    .venv/bin/python bench/sends.py --sockets 2000 --events 20

Loopback TCP pairs whose far ends nobody reads (the kernel's buffers hold every frame), each near
end a ``ParkedSocket`` behind a direct ``Subscriber``, as a parked reader is. Each round times,
with ``getrusage``, ``Subscriber.push`` of each event to every socket (what ``Hub._fan_out``
does per reader), then, on fresh pairs, a plain ``raw.send(frame)`` to every socket: the floor
for one ``send`` per reader per event in Python. Printed: user and sys microseconds per delivery
for each, per round. Loopback only; the work is bounded by the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livefeed.model.frames import Event
from livefeed.model.ids import StreamId
from livefeed.stream.hub import Subscriber
from livefeed.stream.ws_parked import ParkedSocket, ParkingLot, plain_socket


class _Owner:
    def message(self) -> bool:
        return True

    def lost(self) -> None:
        pass


Pair = tuple[Subscriber, ParkedSocket, socket.socket]
"""A direct subscriber, its parked socket, and the far end kept open until the round ends."""


async def _parked(count: int, listener: socket.socket) -> list[Pair]:
    loop = asyncio.get_running_loop()
    lot = ParkingLot(set(), None, None, None)
    out = []
    for _ in range(count):
        peer = socket.create_connection(listener.getsockname())
        near, _ = listener.accept()
        near.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, near)
        parked = ParkedSocket(
            lot, transport, plain_socket(transport), _Owner(), deflate=False, inflate_bits=0
        )
        transport.set_protocol(parked)
        sub = Subscriber("bench", 1024)
        sub.go_direct(StreamId(1, 0), parked, 1 << 22)
        out.append((sub, parked, peer))
    return out


def _close(pairs: list[Pair]) -> None:
    for _, parked, peer in pairs:
        parked._transport.abort()
        peer.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    body = '{"type":"brief","headline":"' + "y" * 1480 + '"}'
    events = [Event.of(StreamId(2 + n, 0), "brief", body) for n in range(args.events)]
    deliveries = args.sockets * args.events
    for round_ in range(1, args.rounds + 1):
        for mode in ("hub", "bare send"):
            pairs = await _parked(args.sockets, listener)
            raws = [parked._raw for _, parked, _ in pairs]
            before = resource.getrusage(resource.RUSAGE_SELF)
            for event in events:
                wire = event.wire
                if mode == "hub":
                    for sub, _, _ in pairs:
                        sub.push([event], wire, None)
                else:
                    for raw in raws:
                        assert raw is not None
                        raw.send(wire)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user = (after.ru_utime - before.ru_utime) * 1e6 / deliveries
            system = (after.ru_stime - before.ru_stime) * 1e6 / deliveries
            print(f"round {round_} {mode:9}: user {user:.2f} us, sys {system:.2f} us per delivery")
            _close(pairs)
            await asyncio.sleep(0.2)
    listener.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
