"""Raw HTTP over sockets, an OpenAI client and polling, for the simulator tests."""

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai

from batchkit.simulate import SimulatorHandle

T = TypeVar("T")


@dataclass
class RawReply:
    """The bytes a server sent on one connection, and how the read ended."""

    data: bytes
    is_timed_out: bool

    @property
    def head(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[0]

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1]

    @property
    def payload(self) -> bytes:
        """The body with chunked transfer encoding removed."""
        if (self.header("Transfer-Encoding") or "").lower() != "chunked":
            return self.body
        decoded = []
        rest = self.body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded.append(rest[:size])
            rest = rest[size + 2 :]
        return b"".join(decoded)

    @property
    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.decode().split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def chat_body(content: str, **extra: Any) -> dict[str, Any]:
    """Return a chat completion body with one user message."""
    return {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def raw_post(
    simulator: SimulatorHandle,
    path: str,
    body: dict[str, Any] | bytes,
    *,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> RawReply:
    """POST over a plain socket and return every byte until close or timeout."""
    url = urlsplit(simulator.root_url)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.hostname}:{url.port}",
        f"Authorization: Bearer {simulator.api_key}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{key}: {value}" for key, value in (headers or {}).items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_until_close(sock, timeout)


def _read_until_close(sock: socket.socket, timeout: float) -> RawReply:
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return RawReply(b"".join(chunks), True)
        except ConnectionResetError:
            return RawReply(b"".join(chunks), False)
        if not chunk:
            return RawReply(b"".join(chunks), False)
        chunks.append(chunk)


def openai_client(simulator: SimulatorHandle, **options: Any) -> openai.OpenAI:
    """Return an OpenAI SDK client for the simulator, without retries."""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10.0)
    return openai.OpenAI(
        base_url=simulator.base_url, api_key=simulator.api_key, **options
    )


def wait_for(
    check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02
) -> T:
    """Call `check` until it returns a true value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
