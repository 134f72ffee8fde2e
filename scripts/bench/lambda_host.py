"""A Lambda Runtime API emulator for one function process, and a Secrets Manager endpoint
(moto) whose request log counts the calls a function makes. Used by run.py for the
Lambda-shaped rows: the mint-token binary as deployed, driven invocation by invocation.
"""

import json
import queue
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a function process stopped mid-request: expected when it is shut down


class RuntimeApi:
    """Serves /invocation/next to one function process and collects its answers."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = {}
        self.answered = threading.Condition()
        self.closed = False
        self.count = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404)
                while not api.closed:
                    try:
                        request_id, event = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                else:
                    return self.reply(410)
                deadline = int(time.time() * 1000) + 30_000
                self.reply(200, json.dumps(event).encode(), [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn",
                     "arn:aws:lambda:us-east-1:123456789012:function:mint-token"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:1] == ["init"]:
                    api.finish("init", "error", body)
                elif len(parts) == 3 and parts[0] == "invocation":
                    api.finish(parts[1], parts[2], body)
                else:
                    return self.reply(404)
                self.reply(202, b"{}", [("Content-Type", "application/json")])

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def finish(self, request_id, kind, body):
        with self.answered:
            self.answers[request_id] = (kind, body)
            self.answered.notify_all()

    def invoke(self, event, timeout=10.0):
        """Queues `event`; returns (kind, parsed body) once the function answers."""
        self.count += 1
        request_id = f"req-{self.count}"
        self.events.put((request_id, event))
        deadline = time.monotonic() + timeout
        with self.answered:
            while request_id not in self.answers and "init" not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the function did not answer")
                self.answered.wait(left)
            kind, body = self.answers.pop(request_id, None) or self.answers["init"]
        return kind, json.loads(body or b"null")

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


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
        "AWS_LAMBDA_FUNCTION_NAME": "mint-token",
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
