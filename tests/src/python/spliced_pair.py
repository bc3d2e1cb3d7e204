"""A server and a client in one process over loopback, where the server moves part of one
response with splice(2), which observer's programs do not see.

The client sends --requests GETs on one keep-alive connection and checks each answer. The answer
to request --splice-at sends half its body from a pipe with os.splice; from then on the server's
writes are no longer where the programs count them. The next two requests go out together, so
the server writes both answers before the client reads them: a reader trailing its writer, as a
proxy's often does. Prints `OK <n>`.

The test runs it after `http_response.py`, whose `read_response` it uses.
"""

import argparse
import os
import socket
import sys
import threading
import time


def body_of(i):
    return (f"answer {i} " * 40).encode()


# The client reads in small pieces, as a proxy filling a small buffer does: a read then ends
# before the bytes written so far do.
READ_BYTES = 256


def serve(listener, splice_at):
    conn, _ = listener.accept()
    with conn:
        for answered, _ in enumerate(requests_of(conn)):
            body = body_of(answered)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
            if answered != splice_at:
                conn.sendall(head + body)
                continue
            half = len(body) // 2
            conn.sendall(head)
            read_end, write_end = os.pipe()
            os.write(write_end, body[:half])
            moved = 0
            while moved < half:
                moved += os.splice(read_end, conn.fileno(), half - moved)
            os.close(read_end)
            os.close(write_end)
            conn.sendall(body[half:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--splice-at", type=int, default=3)
    args = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(1)
    threading.Thread(target=serve, args=(listener, args.splice_at), daemon=True).start()

    client = socket.create_connection(("127.0.0.1", args.port))
    pending = b""
    i = 0
    while i < args.requests:
        together = 2 if i == args.splice_at + 1 and i + 1 < args.requests else 1
        for j in range(i, i + together):
            client.sendall(b"GET /answers/%d HTTP/1.1\r\nHost: x\r\n\r\n" % j)
        # Both answers are written before the client reads either.
        time.sleep(0.05 * together)
        for j in range(i, i + together):
            got, pending = read_response(client, pending, READ_BYTES)
            if got != body_of(j):
                print(f"WRONG answer to request {j}: {got[:40]!r}", flush=True)
                sys.exit(1)
        i += together
    client.close()
    print(f"OK {args.requests}", flush=True)


main()
