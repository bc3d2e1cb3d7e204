"""A server and a client in one process, on a network namespace of its own.

Run under `unshare --net`: it brings the namespace's loopback up, serves HTTP/1.1 on
127.0.0.1:--port and connects to it from 127.0.0.1:--source-port, so two of these at once make
the same address pair in two namespaces. The server answers every GET with a body naming
--label; the client sends --requests GETs on one keep-alive connection, checks that each answer
is its own server's, and prints `OK <n>`.

The test runs it after `http_response.py`, whose `read_response` it uses.
"""

import argparse
import socket
import subprocess
import sys
import threading
import time


def serve(listener, body):
    conn, _ = listener.accept()
    with conn:
        for _ in requests_of(conn):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source-port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    body = (f"namespace {args.label} " * 100).encode()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(1)
    threading.Thread(target=serve, args=(listener, body), daemon=True).start()

    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    client.bind(("127.0.0.1", args.source_port))
    client.connect(("127.0.0.1", args.port))
    pending = b""
    for i in range(args.requests):
        client.sendall(b"GET /ns/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        got, pending = read_response(client, pending)
        if got != body:
            print(f"WRONG answer to request {i}: {got[:40]!r}", flush=True)
            sys.exit(1)
        time.sleep(args.interval)
    client.close()
    print(f"OK {args.requests}", flush=True)


main()
