"""A real HTTP receiver for the outbox: a ThreadingHTTPServer on 127.0.0.1, on a free port."""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    """Records every POST. `fail_next(n)` answers 500 to the next n requests; `hold()` keeps
    requests waiting (after they are recorded) until `release()`; `delay` sleeps before answering."""

    def __init__(self):
        self.requests: list[ReceivedRequest] = []
        self.url = ""
        self.delay = 0.0
        self._failures_left = 0
        self._failure_status = 500
        self._released = threading.Event()
        self._released.set()
        self._changed = threading.Condition()

    def fail_next(self, count: int, *, status: int = 500) -> None:
        with self._changed:
            self._failures_left = count
            self._failure_status = status

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
                self._changed.wait(remaining)
            return list(self.requests)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._changed:
            if self._failures_left > 0:
                self._failures_left -= 1
                status = self._failure_status
            else:
                status = 200
            self.requests.append(ReceivedRequest(path=path, headers=headers, body=body, status=status))
            self._changed.notify_all()
            return status


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that timed out and hung up is part of the tests, not an error.
        pass


def _handler_for(receiver: WebhookReceiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver._record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            receiver._released.wait(30)
            if receiver.delay:
                time.sleep(receiver.delay)
            answer = b'{"ok": true}' if status < 300 else b'{"error": "boom"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format, *args):  # noqa: A002
            pass

    return Handler


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    server = _QuietServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/oms"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
        thread.join(5)
