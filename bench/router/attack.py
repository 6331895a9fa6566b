#!/usr/bin/env python3
"""Body-flood attacker for the "under attack" benchmark row (issue 13).

  bench/router/attack.py PORT [-c 64] [-d SECONDS] [--size 16777216] [--rate BYTES_PER_S] [--auth HEADER]

CONNS connections each send `POST /v1/chat/completions` announcing a SIZE-byte
body (Content-Length) with no credentials (or --auth's value as the
Authorization header), then send the body as fast as the socket takes it
(or, with --rate, at that many bytes per second per connection: a slow
sender), and start again: a new request on the same connection once a body is
sent, a new connection as soon as the server closes one. Replies are read and
dropped. Runs for SECONDS (0: until SIGTERM) and prints one JSON line: the
connections made, the replies seen by status, the bytes sent.

One thread, non-blocking sockets and select: the cost is the kernel's copy,
not Python's. Used by run.py; by hand against any proxy.
"""
import argparse, errno, json, re, selectors, signal, socket, sys, time

CHUNK = 256 << 10


class Conn:
    def __init__(self, port, head, size):
        self.s = socket.socket()
        self.s.setblocking(False)
        self.s.connect_ex(("127.0.0.1", port))
        self.head, self.size = head, size
        self.left = size
        self.pending = head  # the head first, then the body in CHUNK pieces
        self.inbuf = b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("-c", "--conns", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=0)
    ap.add_argument("--size", type=int, default=16 << 20)
    ap.add_argument("--rate", type=int, default=0, help="bytes/s per connection (0: as fast as possible)")
    ap.add_argument("--auth", default="", help="Authorization header value (default: none)")
    ap.add_argument("--path", default="/v1/chat/completions")
    a = ap.parse_args()
    auth = f"Authorization: {a.auth}\r\n" if a.auth else ""
    head = (f"POST {a.path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {a.size}\r\n\r\n").encode()
    body = b"x" * CHUNK
    sel = selectors.DefaultSelector()
    stats = {"connections": 0, "requests": 0, "bytes_sent": 0, "replies": {}}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))

    def open_one():
        c = Conn(a.port, head, a.size)
        stats["connections"] += 1
        stats["requests"] += 1
        c.budget, c.t0 = 0.0, time.time()
        sel.register(c.s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def close(c):
        try:
            sel.unregister(c.s)
        except (KeyError, ValueError):
            pass
        c.s.close()
        if not stop[0]:
            open_one()

    for _ in range(a.conns):
        open_one()
    end = time.time() + a.duration if a.duration else float("inf")
    while not stop[0] and time.time() < end:
        for key, ev in sel.select(timeout=0.05):
            c = key.data
            if ev & selectors.EVENT_READ:
                try:
                    got = c.s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    got = None
                except OSError:
                    close(c)
                    continue
                if got == b"":
                    close(c)
                    continue
                if got:
                    c.inbuf = (c.inbuf + got)[-4096:]
                    for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", c.inbuf):
                        k = m.group(1).decode()
                        stats["replies"][k] = stats["replies"].get(k, 0) + 1
                    c.inbuf = c.inbuf[c.inbuf.rfind(b"HTTP/1.") + 1:] if b"HTTP/1." in c.inbuf else c.inbuf
            if ev & selectors.EVENT_WRITE:
                if not c.pending:
                    n = min(CHUNK, c.left)
                    if a.rate:
                        # a slow sender: what the rate allows since the last send
                        now = time.time()
                        c.budget = min(c.budget + (now - c.t0) * a.rate, CHUNK)
                        c.t0 = now
                        n = min(n, int(c.budget))
                        if n <= 0:
                            continue
                        c.budget -= n
                    c.pending = memoryview(body)[:n]
                    c.left -= n
                try:
                    k = c.s.send(c.pending)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED):
                        close(c)
                        continue
                    raise
                stats["bytes_sent"] += k
                c.pending = c.pending[k:]
                if not c.pending and c.left == 0:
                    # the whole body went: the next request on this connection
                    c.left, c.pending = a.size, head
                    stats["requests"] += 1
        if a.rate:
            time.sleep(0.01)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    sys.exit(main())
