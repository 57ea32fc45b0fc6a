"""Direct WebSocket writes for broadcasts: the price board reaching thousands of clients.

python-engineio hands every outgoing packet to a per-client queue, and a writer green
thread per client wakes up, frames it and sends it: two timer-heap operations, two
context switches and a timeout object per client per message. For a frame that goes to
every watcher of the board ten times a second, that bookkeeping, not the socket write,
is what limits one web process (about 8,000 sends/s on a core).

This module keeps the queue for everything else but, for a packet sent to a client whose
WebSocket is idle (nothing queued, nothing being written), writes the finished WebSocket
frame straight to the socket from the emitting green thread. The frame is built once per
packet and shared by every client: server-to-client frames are not masked, and
permessage-deflate is negotiated with `server_no_context_takeover` (RFC 7692 lets the
server ask for it), so a compressed frame depends only on the payload and the window size.

Ordering and back-pressure are kept:
- a client with anything queued or in flight goes through its queue as before, so its
  messages never overtake each other;
- the write is non-blocking: a full socket buffer (a slow reader) sends the packet down
  the queue instead, and a partial write hands the rest to a green thread that holds the
  WebSocket's send lock until it is out, so the writer cannot interleave with it.
So a slow client costs the broadcaster one failed non-blocking send, never a wait.

Counts of each kind of write are in /healthz under "socketio", so an operator can see how
many sends take the slow road (a high share of queued writes means slow clients).

It uses internals of python-engineio 4.x and eventlet's RFC6455 WebSocket (both pinned in
requirements.txt); tests/test_broadcast.py runs a real eventlet server to pin the
behaviour. SOCKETIO_DIRECT_WRITES=0 turns it off. Only the eventlet async mode uses it.
"""

from __future__ import annotations

import collections
import logging

log = logging.getLogger(__name__)

WS_ATTRIBUTE = "edutradex_ws"


def install(server) -> collections.Counter | None:
    """Attach the direct-write path to a python-socketio server. Returns its write counts
    (direct, partial, queued), or None where it does not apply (not eventlet)."""
    eio = server.eio
    if eio.async_mode != "eventlet":
        return None
    from engineio.async_drivers.eventlet import WebSocketWSGI

    class TrackedWebSocketWSGI(WebSocketWSGI):
        """Remembers, on the Engine.IO socket, the WebSocket that serves it, and asks
        for per-message compression without context takeover (shareable frames)."""

        def __init__(self, handler, server):
            socket = getattr(handler, "__self__", None)

            def handle(ws):
                if socket is not None:
                    setattr(socket, WS_ATTRIBUTE, ws)
                try:
                    return handler(ws)
                finally:
                    if socket is not None:
                        setattr(socket, WS_ATTRIBUTE, None)

            super().__init__(handle, server)

        def _negotiate_permessage_deflate(self, extensions):
            config = super()._negotiate_permessage_deflate(extensions)
            if config is not None:
                config["server_no_context_takeover"] = True
            return config

    eio._async = {**eio._async, "websocket": TrackedWebSocketWSGI}
    queued_send = eio.send_packet
    frames = FrameCache()
    counts = collections.Counter(direct=0, partial=0, queued=0)

    def send_packet(sid, pkt):
        socket = eio.sockets.get(sid)
        ws = getattr(socket, WS_ATTRIBUTE, None) if socket is not None else None
        written = write_direct(socket, ws, pkt, frames) if ws is not None else None
        if written is None:
            counts["queued"] += 1
            queued_send(sid, pkt)
        else:
            counts[written] += 1

    eio.send_packet = send_packet
    return counts


class FrameCache:
    """The WebSocket frame of the packet being broadcast, per compression setting. One
    packet at a time: the manager sends the same packet object to every recipient."""

    def __init__(self):
        self.packet = None
        self.frames: dict = {}

    def frame(self, ws, pkt, deflate: dict | None) -> bytes:
        """`deflate`: the client's permessage-deflate options (None: uncompressed)."""
        if pkt is not self.packet:
            self.packet = pkt
            self.frames = {}
        key = None if deflate is None else deflate.get("server_max_window_bits", 15)
        frame = self.frames.get(key)
        if frame is None:
            frame = self.frames[key] = ws._pack_message(pkt.encode())
        return frame


def write_direct(socket, ws, pkt, frames: FrameCache) -> str | None:
    """Write the packet's frame now if the client's WebSocket is idle: "direct" (all of it
    written), "partial" (the rest follows from a green thread), or None: use the queue."""
    if socket.closing or socket.closed or socket.upgrading or not socket.upgraded:
        return None
    lock = ws._sendlock
    # Something queued, being written, or about to be: a writer waiting on the lock holds a
    # packet it took from the queue (the lock reads free between a release and that
    # waiter's turn), so only a client with none of these may be written to now.
    if socket.queue.qsize() or lock.locked() or lock._waiters or ws.websocket_closed:
        return None
    deflate = ws.extensions.get("permessage-deflate")
    if deflate is not None and not deflate.get("server_no_context_takeover"):
        return None
    if not socket.check_ping_timeout():
        return None  # the client is gone: engineio's send drops the packet
    data = frames.frame(ws, pkt, deflate)
    try:
        sent = ws.socket.fd.send(data)
    except BlockingIOError:
        return None  # the client's buffer is full: the queue keeps the order
    except OSError:
        return None  # let engineio's writer meet the error and close the socket
    if sent < len(data):
        lock.acquire()  # free (checked above); the writer now waits for the rest
        socket.server.start_background_task(_send_rest, ws, data[sent:])
        return "partial"
    return "direct"


def _send_rest(ws, rest: bytes) -> None:
    try:
        ws.socket.sendall(rest)
    except OSError:
        log.debug("client went away during a broadcast write")
    finally:
        ws._sendlock.release()
