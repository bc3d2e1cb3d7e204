"""A small API with object-level authorization, for observer's attack detection test.

Endpoints (every answer is JSON):

- `GET /api/login` with Basic credentials: 200 and a signed JWT for a known user and password,
  401 otherwise;
- `GET /api/items/<id>` with `Authorization: Bearer <jwt>`: 200 for the caller's own items,
  403 for another user's, 404 for ids past the last item, 401 without a valid token;
- `GET /api/search?q=...` with a token: 200 and what matched.

Item `n` belongs to `OWNERS[n % len(OWNERS)]`, so a caller walking ids gets a mix of 200 and
403. Binds 127.0.0.1 on a port the kernel picks and prints `PORT <n>` once it listens.
"""

import base64
import hashlib
import hmac
import http.server
import json
import time
import urllib.parse

SECRET = b"detect-e2e-signing-key"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "mallory": "mallory-pw"}
OWNERS = ["alice", "bob", "carol", "mallory"]
LAST_ITEM = 1000


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_for(user):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": user, "exp": int(time.time()) + 3600}).encode())
    signature = hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def user_of(token):
    """The token's subject if its signature holds and it has not expired, else None."""
    try:
        header, claims, signature = token.split(".")
        expected = hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(unb64url(signature), expected):
            return None
        payload = json.loads(unb64url(claims))
        return payload["sub"] if payload["exp"] > time.time() else None
    except (ValueError, KeyError):
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def caller(self):
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        return user_of(credentials.strip()) if scheme.lower() == "bearer" else None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/api/login":
            return self.login()
        user = self.caller()
        if user is None:
            return self.answer(401, {"error": "a valid bearer token is required"})
        if len(parts) == 3 and parts[:2] == ["api", "items"] and parts[2].isdigit():
            item = int(parts[2])
            if item > LAST_ITEM:
                return self.answer(404, {"error": "no such item"})
            if OWNERS[item % len(OWNERS)] != user:
                return self.answer(403, {"error": "not yours"})
            return self.answer(200, {"id": item, "owner": user, "name": f"item {item}"})
        if url.path == "/api/search":
            query = urllib.parse.parse_qs(url.query).get("q", [""])[0]
            return self.answer(200, {"query": query, "results": []})
        return self.answer(404, {"error": "no such endpoint"})

    def login(self):
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            user, password = "", ""
        if scheme.lower() != "basic" or PASSWORDS.get(user) != password:
            return self.answer(401, {"error": "wrong user or password"})
        return self.answer(200, {"token": token_for(user)})


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


main()
