"""A small echo server of the tests' own, to drive `bench run --server` through every way an
outside server can behave (tests/outside.rs).

    python3 tests/outside/server.py PORT [--fork] [--daemonize] [--die-after S]
                                         [--never-ready] [--exit-before-ready] [--tag T]

--fork: the first process forks a worker that serves, and waits for it (a master and a worker,
as nginx); --daemonize: forks twice and the first process exits (a daemon); --die-after S: the
server exits with code 7 S seconds after it starts listening; --never-ready: never listens;
--exit-before-ready: says why on stderr and exits 1. --tag is ignored (the tests look for it in
the process list).
"""

import os
import selectors
import socket
import sys
import time


def serve(port, die_after):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    deadline = time.monotonic() + die_after if die_after else None
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        for key, _ in sel.select(timeout):
            if key.fileobj is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            conn.setblocking(True)
            conn.sendall(data)
            conn.setblocking(False)
        if deadline is not None and time.monotonic() >= deadline:
            sys.exit(7)


def main():
    args = sys.argv[1:]
    port = int(args[0])
    die_after = float(args[args.index("--die-after") + 1]) if "--die-after" in args else None
    if "--exit-before-ready" in args:
        print("server.py: cannot start: told to fail", file=sys.stderr, flush=True)
        sys.exit(1)
    if "--never-ready" in args:
        print("server.py: waiting for ever without listening", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)
    if "--daemonize" in args:
        if os.fork() > 0:
            sys.exit(0)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        serve(port, die_after)
    if "--fork" in args:
        pid = os.fork()
        if pid == 0:
            serve(port, die_after)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    serve(port, die_after)


if __name__ == "__main__":
    main()
