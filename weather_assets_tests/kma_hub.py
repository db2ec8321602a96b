"""A stand-in for the KMA API Hub on loopback: real HTTP, answers from the offline generator, scripted failures."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from weather_assets.offline.hub import OfflineKMA

# An action answers one request: (handler, endpoint, params without authKey).
Action = Callable[["HubHandler", str, dict[str, str]], None]


class FakeHub(ThreadingHTTPServer):
    """An API Hub stand-in: records every request, plays scripted failures first, then answers normally."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.requests: list[str] = []
        self.script: deque[Action] = deque()
        self.default: Action = answer
        self.release = threading.Event()  # set at teardown so slow handlers stop waiting

    @property
    def base_url(self) -> str:
        """The API Hub base URL shape, on this server's port."""
        return f"http://127.0.0.1:{self.server_address[1]}/api/typ01/url"

    @property
    def forecast_url(self) -> str:
        """The API Hub's getVilageFcst URL shape, on this server's port."""
        return f"http://127.0.0.1:{self.server_address[1]}/api/typ02/openApi/VilageFcstInfoService_2.0/getVilageFcst"

    def endpoints(self) -> list[str]:
        """The endpoint (last path segment) of each request, in arrival order."""
        return [urlsplit(path).path.rsplit("/", 1)[-1] for path in self.requests]

    def queries(self, endpoint: str) -> list[dict[str, str]]:
        """The full query (authKey included) of each request to one endpoint."""
        return [
            dict(parse_qsl(urlsplit(path).query))
            for path in self.requests
            if urlsplit(path).path.endswith("/" + endpoint)
        ]

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up on a slow answer closes its socket; that is expected here, anything else is not."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HubHandler(BaseHTTPRequestHandler):
    """Records the request, then lets the next scripted action (or the default) answer it."""

    server: FakeHub

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        split = urlsplit(self.path)
        params = {k: v for k, v in parse_qsl(split.query) if k != "authKey"}
        endpoint = split.path.rsplit("/", 1)[-1]
        action = self.server.script.popleft() if self.server.script else self.server.default
        action(self, endpoint, params)

    def send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        """One complete HTTP answer with a Content-Length, so the client never waits for a close."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        """Keep the test output quiet."""


def answer(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
    """What the API Hub answers: the offline generator's bytes for this endpoint and query."""
    handler.send(200, OfflineKMA().respond(endpoint, params))


def status(code: int, body: bytes = b"") -> Action:
    """A fixed answer, for HTTP errors and HTTP-200 error bodies."""
    return lambda handler, endpoint, params: handler.send(code, body)


def slow(seconds: float) -> Action:
    """A correct answer sent only after `seconds`, longer than the client's read timeout."""

    def act(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
        handler.server.release.wait(seconds)
        answer(handler, endpoint, params)

    return act


def echo(code: int, template: str) -> Action:
    """An error body that quotes the request as received, key included, as some gateways do."""
    return lambda handler, endpoint, params: handler.send(code, template.format(path=handler.path).encode())


@contextlib.contextmanager
def running(server: FakeHub) -> Iterator[FakeHub]:
    """The server answering on a thread of its own until the block ends; slow handlers are released then."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
