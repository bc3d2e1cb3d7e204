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
"""

import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import time

# How long a joined thread may take to leave /proc: it is gone within microseconds.
THREAD_EXIT_TIMEOUT_SECONDS = 5


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
            return http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)

    def get(conn, path):
        conn.request("GET", path)
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
        else:
            answer = get(conn, line)
        print(json.dumps(answer), flush=True)
    conn.close()


main()
