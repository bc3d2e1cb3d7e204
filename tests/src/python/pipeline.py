"""Pipelining client for observer's end-to-end tests.

Writes a GET for every path given, all in one write on one raw socket to 127.0.0.1:--port,
before reading anything (HTTP/1.1 pipelining). The last request asks the server to close, so
reading to the end collects every response. With --read-after, it waits that many seconds
before reading, so the server has answered and closed first. Prints the local port, then the
bytes received.
"""

import argparse
import socket
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--read-after", type=float, default=0.0)
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()

    requests = b""
    for i, path in enumerate(args.paths):
        close = b"Connection: close\r\n" if i == len(args.paths) - 1 else b""
        requests += b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path.encode(), close)

    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as sock:
        sock.sendall(requests)
        time.sleep(args.read_after)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        print(f"LOCAL_PORT {sock.getsockname()[1]}", flush=True)
    sys.stdout.write(received.decode("utf-8", "replace"))


main()
