"""cargo-lambda's local Lambda runtime for one function process, and a Secrets Manager endpoint
(moto) whose request log counts the calls a function makes. Used by run.py for the
Lambda-shaped rows: the mint-token binary as deployed, driven invocation by invocation.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARGO_LAMBDA = os.environ.get("CARGO_LAMBDA", str(ROOT / "target/lambda-venv/bin/cargo-lambda"))


class RuntimeApi:
    """cargo-lambda's local Lambda runtime (`cargo lambda watch --only-lambda-apis`, the one the
    tests use) for one function: the function process polls `address`; `invoke` posts to the
    Invoke API, as `cargo lambda invoke` does."""

    def __init__(self, function="mint-token"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "--quiet",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"})
        deadline = time.monotonic() + 60
        # Unknown paths are routed to a function and wait for one: a TCP connect is the probe.
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"cargo lambda watch ({CARGO_LAMBDA}) did not start")
                time.sleep(0.05)
        self.address = f"http://127.0.0.1:{port}/.rt/{function}"
        self.function = function
        self.invoke_url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"

    def invoke(self, event, timeout=10.0):
        """Returns ("response" or "error", parsed body) once the function answers."""
        req = urllib.request.Request(self.invoke_url, data=json.dumps(event).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return "response", json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return "error", json.loads(e.read() or b"null")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def token_event(sub, claims):
    """An HTTP API (payload 2.0) `GET /token` whose JWT authorizer verified `claims`."""
    now = int(time.time())
    return {
        "version": "2.0",
        "routeKey": "GET /token",
        "rawPath": "/token",
        "rawQueryString": "",
        "headers": {"accept": "*/*", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": {"jwt": {"claims": {"sub": sub, **claims, "iat": str(now),
                                              "exp": str(now + 3600)}, "scopes": None}},
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": "GET", "path": "/token", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "bench",
            "routeKey": "GET /token",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": now * 1000,
        },
        "isBase64Encoded": False,
    }


def lambda_env(runtime):
    return {
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": runtime.function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
    }


def secrets_manager(endpoint, action, payload):
    """One Secrets Manager JSON-protocol call to the emulator (moto does not check signatures)."""
    req = urllib.request.Request(endpoint + "/", data=json.dumps(payload).encode(), headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{action}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/"
                         "aws4_request, SignedHeaders=host, Signature=0",
    })
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def moto_requests(log_path):
    """Requests moto has answered so far (one log line each)."""
    with open(log_path, "rb") as f:
        return sum(1 for line in f if b'"POST / HTTP/1.1"' in line)
