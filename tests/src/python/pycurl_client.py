"""HTTPS client through pycurl for observer's end-to-end tests.

pycurl's wheel bundles its own libcurl and libssl (under site-packages/pycurl.libs, with hashed
names), so this client's TLS runs through an OpenSSL copy the system does not know about. It
imports pycurl, prints READY, and waits for a line on standard input before each request (the
line is the URL), so a test can let the agent find that libssl first. Prints the status and the
body as JSON per request; exits at the end of its input.
"""

import io
import json
import sys

import pycurl


def main():
    print("READY", flush=True)
    curl = pycurl.Curl()
    for line in sys.stdin:
        url = line.strip()
        if not url:
            continue
        body = io.BytesIO()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.WRITEDATA, body)
        curl.setopt(pycurl.SSL_VERIFYPEER, 0)
        curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.perform()
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        print(json.dumps({"status": status, "body": body.getvalue().decode()}), flush=True)
    curl.close()


if __name__ == "__main__":
    main()
