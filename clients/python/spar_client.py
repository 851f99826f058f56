"""A small client for `spar serve`: SSR episodes over HTTP/JSON, standard library only.

    from spar_client import SparClient

    spar = SparClient("http://127.0.0.1:8765", token="...")   # or SPAR_URL / SPAR_TOKEN
    session = spar.create_session(role="solver", artifact="/path/to/artifact")
    print(session.observation)              # the specification
    step = session.step("read_file", path="pkg/mod.py")
    step = session.step({"name": "run", "arguments": '{"args": ["-m", "pytest", "-q"]}'})
    step = session.step("submit")
    print(step.reward, step.terminated, step.truncated)
    session.close()

`session.tools` holds the OpenAI function definitions to hand to an LLM; `session.step`
accepts an LLM's tool call as it comes (`{"name": ..., "arguments": "..."}`, or the whole
`{"type": "function", "function": {...}}` object). Errors from the server raise `SparError`
with its message, which says what was wrong.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["SparClient", "Session", "Step", "SparError"]


class SparError(Exception):
    """The server refused a request; `status` is the HTTP status, `message` its explanation."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass
class Step:
    """Gymnasium's (observation, reward, terminated, truncated, info) for one tool call."""

    observation: str
    error: bool
    reward: float
    terminated: bool
    truncated: bool
    info: dict
    artifact: Optional[dict] = None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class Session:
    """One episode on the server."""

    client: "SparClient"
    id: str
    role: str
    observation: str
    tools: list = field(default_factory=list)
    task: Optional[str] = None

    def step(self, call: Any, **arguments: Any) -> Step:
        """One tool call: `step("read_file", path="a.py")`, or an LLM's tool call dict."""
        if isinstance(call, str):
            body = {"tool": call, **arguments}
        else:
            body = call
        answer = self.client._request("POST", f"/v1/sessions/{self.id}/step", body)
        return Step(
            observation=answer["observation"]["text"],
            error=answer["observation"]["error"],
            reward=answer["reward"],
            terminated=answer["terminated"],
            truncated=answer["truncated"],
            info=answer["info"],
            artifact=answer.get("artifact"),
        )

    def state(self) -> dict:
        return self.client._request("GET", f"/v1/sessions/{self.id}")

    def close(self) -> None:
        self.client._request("DELETE", f"/v1/sessions/{self.id}")

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except SparError:
            pass


class SparClient:
    """A connection to `spar serve`; safe to share between threads."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 600.0):
        self.url = (url or os.environ.get("SPAR_URL") or "http://127.0.0.1:8765").rstrip("/")
        self.token = token or os.environ.get("SPAR_TOKEN")
        if not self.token:
            raise ValueError("give the token spar serve printed: SparClient(token=...) or SPAR_TOKEN")
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                message = json.loads(text)["error"]
            except Exception:
                message = text.decode(errors="replace")
            raise SparError(e.code, message) from None
        return json.loads(text) if text else None

    def health(self) -> dict:
        return self._request("GET", "/v1/health")

    def create_session(self, role: str = "solver", seed: int = 0, **source: Any) -> Session:
        """`role="solver"` with one of artifact=DIR, artifact_id=ID, instance=LINE;
        `role="injector"` with project=NAME."""
        answer = self._request("POST", "/v1/sessions", {"role": role, "seed": seed, **source})
        return Session(
            client=self,
            id=answer["session_id"],
            role=answer["role"],
            observation=answer["observation"]["text"],
            tools=answer["tools"],
            task=answer.get("task"),
        )

    def artifact(self, artifact_id: str, wait: float = 0.0) -> dict:
        """An injected artifact's status; `wait` long-polls (at most 60 s) for its reward."""
        return self._request("GET", f"/v1/artifacts/{artifact_id}?wait={wait}")
