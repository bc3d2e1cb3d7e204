"""What the single-file test scripts share: reading HTTP/1.1 requests and responses off sockets.

Prepended to a script's text by the test that runs it (`python -c`), so the scripts stay single
files to the interpreter and need no package.
"""


def read_response(sock, pending, read_bytes=65536):
    """One response framed by Content-Length, read `read_bytes` at a time after `pending`.
    Returns its body and the bytes read past it."""
    while b"\r\n\r\n" not in pending:
        data = sock.recv(read_bytes)
        if not data:
            raise EOFError("the server closed the connection")
        pending += data
    head, rest = pending.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = sock.recv(read_bytes)
        if not data:
            raise EOFError("the server closed the connection mid-body")
        rest += data
    return rest[:length], rest[length:]


def requests_of(conn):
    """Yields once per request head read off `conn` (GETs: no bodies), until it closes."""
    pending = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        pending += data
        while b"\r\n\r\n" in pending:
            _, pending = pending.split(b"\r\n\r\n", 1)
            yield
