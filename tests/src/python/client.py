"""Keep-alive HTTP(S) client for observer's end-to-end tests, driven line by line.

Opens one connection to 127.0.0.1:--port and, for each path read from standard input, sends a
GET on that same connection and prints one JSON line: path, status, body size, the body's
first bytes and the connection's local port. With --tls it speaks TLS through Python's ssl
module (OpenSSL's SSL_read_ex and SSL_write_ex) and does not verify the certificate.

Being driven from standard input lets a test open the connection, start the agent, and only
then send the next request on it. Exits at the end of its input.
"""

import argparse
import http.client
import json
import ssl
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()

    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)

    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        print(
            json.dumps(
                {
                    "path": path,
                    "status": response.status,
                    "size": len(body),
                    "head": body[:64].decode("utf-8", "replace"),
                    "local_port": conn.sock.getsockname()[1],
                }
            ),
            flush=True,
        )
    conn.close()


main()
