"""Keep-alive HTTP(S) client for observer's end-to-end tests, driven line by line.

Opens one connection to 127.0.0.1:--port and, for each path read from standard input, sends a
GET on that same connection and prints one JSON line: path, status, body size, the body's
first bytes and the connection's local port. With --tls it speaks TLS through Python's ssl
module (OpenSSL's SSL_read_ex and SSL_write_ex) and does not verify the certificate.

Being driven from standard input lets a test open the connection, start the agent, and only
then send the next request on it. Exits at the end of its input.

A line `@thread PATH` sends its GET from a new thread on a connection of its own instead, and
answers once that thread is gone from the system (not only joined), so that a test can look at
what a thread leaves behind when it exits. Every answer names the thread that made the request.

A line `@late PATH` sends its GET on the same connection but reads the answer only
LATE_READ_SECONDS after its first bytes arrived, so that the server has long finished writing a
response that fits the socket's buffers before the first read: a test can count on no read
racing the write of the bytes it returns.
"""

import argparse
import http.client
import json
import os
import select
import ssl
import sys
import threading
import time

# How long a joined thread may take to leave /proc: it is gone within microseconds.
THREAD_EXIT_TIMEOUT_SECONDS = 5

# A response that fits the socket's buffers is written whole within milliseconds of its first
# bytes, even on a loaded machine; this is a hundred times that.
LATE_READ_SECONDS = 0.3

# How long the server may take to answer (the connection's timeout).
ANSWER_TIMEOUT_SECONDS = 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()

    def connect():
        if args.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                "127.0.0.1", args.port, context=context, timeout=ANSWER_TIMEOUT_SECONDS
            )
        return http.client.HTTPConnection("127.0.0.1", args.port, timeout=ANSWER_TIMEOUT_SECONDS)

    def get(conn, path, late=False):
        conn.request("GET", path)
        if late:
            select.select([conn.sock], [], [], ANSWER_TIMEOUT_SECONDS)
            time.sleep(LATE_READ_SECONDS)
        response = conn.getresponse()
        body = response.read()
        return {
            "path": path,
            "status": response.status,
            "size": len(body),
            "head": body[:64].decode("utf-8", "replace"),
            "local_port": conn.sock.getsockname()[1],
            "thread": threading.get_native_id(),
        }

    def get_in_new_thread(path):
        answer = {}

        def run():
            own = connect()
            answer.update(get(own, path))
            own.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        task = f"/proc/self/task/{answer['thread']}"
        deadline = time.monotonic() + THREAD_EXIT_TIMEOUT_SECONDS
        while os.path.exists(task) and time.monotonic() < deadline:
            time.sleep(0.001)
        return answer

    conn = connect()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line.startswith("@thread "):
            answer = get_in_new_thread(line.removeprefix("@thread "))
        elif line.startswith("@late "):
            answer = get(conn, line.removeprefix("@late "), late=True)
        else:
            answer = get(conn, line)
        print(json.dumps(answer), flush=True)
    conn.close()


main()
