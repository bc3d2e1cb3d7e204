"""HTTP and HTTPS server for observer's end-to-end tests.

Serves the files of --dir over HTTP/1.1, so keep-alive and pipelining work (the handler reads
requests one after another from a buffered stream), plus `/chunked`, which answers with
`Transfer-Encoding: chunked` in several writes. With --cert and --key it speaks TLS through
Python's ssl module, that is OpenSSL's SSL_read_ex and SSL_write_ex.

It binds 127.0.0.1 on a port the kernel picks and prints `PORT <n>` once it listens, so the
harness neither guesses a free port nor polls for readiness.
"""

import argparse
import functools
import http.server
import ssl

# Several pieces, each written on its own, so the response really is framed by chunks.
CHUNKS = [b"chunked body starts here; ", b"then a second piece; ", b"and the third, last piece\n"]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        super().do_GET()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=args.dir)
    )
    server.daemon_threads = True
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


main()
