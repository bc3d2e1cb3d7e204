"""Callers of detect_api.py for observer's attack detection test: benign users, then attackers.

Each caller connects from its own loopback address (127.0.0.0/8 is all local), so the agent
tells them apart by `client.address` as it would tell hosts apart. One phase per run:

- `warmup`: alice, bob and carol log in, then read their own items and search, for --seconds;
- `bola`: mallory logs in, then walks item ids 1..--count (a mix of 200 and 403);
- `brute-force`: --count logins as `admin`, each with another password (all 401);
- `sqli`: carol logs in, then searches with an SQL injection.

Prints one JSON line: the calls made and their statuses, by caller address.
"""

import argparse
import base64
import http.client
import json
import time
import urllib.parse

USERS = {"alice": ("127.0.0.2", 0), "bob": ("127.0.0.3", 1), "carol": ("127.0.0.4", 2)}
ATTACKER = {"bola": "127.0.0.5", "brute-force": "127.0.0.6", "sqli": "127.0.0.7"}
OWNERS = 4  # item n belongs to the (n % 4)th user of detect_api.py's OWNERS
SQL_INJECTION = "1' UNION SELECT username, password FROM users--"


class Caller:
    def __init__(self, port, address, made):
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=10, source_address=(address, 0)
        )
        self.address = address
        self.made = made
        self.token = None

    def get(self, path, authorization=None):
        headers = {}
        if authorization:
            headers["Authorization"] = authorization
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        statuses = self.made.setdefault(self.address, {})
        statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        return response.status, body

    def login(self, user, password):
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        status, body = self.get("/api/login", authorization=f"Basic {basic}")
        if status == 200:
            self.token = json.loads(body)["token"]
        return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--phase", required=True, choices=["warmup", "bola", "brute-force", "sqli"])
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    made = {}

    if args.phase == "warmup":
        callers = []
        for user, (address, owner_index) in USERS.items():
            caller = Caller(args.port, address, made)
            assert caller.login(user, f"{user}-pw") == 200
            own_items = [owner_index + OWNERS * k for k in range(1, 6)]
            callers.append((caller, own_items))
        deadline = time.monotonic() + args.seconds
        round_ = 0
        while time.monotonic() < deadline:
            for caller, own_items in callers:
                caller.get(f"/api/items/{own_items[round_ % len(own_items)]}")
                if round_ % 3 == 0:
                    caller.get("/api/search?q=" + urllib.parse.quote("blue mug"))
            round_ += 1
            # A person's pace, not a flood: under ten calls a second per user, well below what
            # the rate detector reports while an endpoint has few callers to compare with.
            time.sleep(0.1)
    elif args.phase == "bola":
        caller = Caller(args.port, ATTACKER["bola"], made)
        assert caller.login("mallory", "mallory-pw") == 200
        for item in range(1, args.count + 1):
            caller.get(f"/api/items/{item}")
    elif args.phase == "brute-force":
        caller = Caller(args.port, ATTACKER["brute-force"], made)
        for attempt in range(args.count):
            assert caller.login("admin", f"guess-{attempt}") == 401
    elif args.phase == "sqli":
        caller = Caller(args.port, ATTACKER["sqli"], made)
        assert caller.login("carol", "carol-pw") == 200
        caller.get("/api/search?q=" + urllib.parse.quote(SQL_INJECTION))

    print(json.dumps(made), flush=True)


main()
