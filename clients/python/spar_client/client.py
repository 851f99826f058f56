"""The synchronous client: one pooled HTTP connection set, shared safely between threads."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import httpx

from .types import (
    RETRY_STATUSES,
    Artifact,
    SessionInfo,
    SessionView,
    SparError,
    Step,
    backoff,
    error_of,
    resolve,
    step_body,
)


class Session(SessionView):
    """One episode on the server; a context manager that closes it."""

    def __init__(self, client: "SparClient", info: SessionInfo):
        super().__init__(info)
        self.client = client

    def step(self, call: Any, **arguments: Any) -> Step:
        """One tool call: `step("bash", command="ls")`, or an LLM's tool call dict."""
        answer = self.client.request("POST", f"/v1/sessions/{self.id}/step", step_body(call, arguments))
        return Step.from_answer(answer)

    def state(self) -> Dict[str, Any]:
        return self.client.request("GET", f"/v1/sessions/{self.id}")

    def close(self) -> None:
        self.client.request("DELETE", f"/v1/sessions/{self.id}")

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except (SparError, httpx.HTTPError):
            pass


class SparClient:
    """A client of `spar serve`. Safe to share between threads; close it (or use `with`) to
    release its connections."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 600.0,
        retries: int = 5,
        backoff_s: float = 0.25,
        max_connections: int = 100,
    ):
        self.url, token = resolve(url, token)
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request, retried while the server did not act on it; `SparError` otherwise."""
        # A request that may have reached the server is sent again only when repeating it is
        # harmless; a refused connection never reached it.
        idempotent = method in ("GET", "DELETE")
        retry_on = httpx.TransportError if idempotent else (httpx.ConnectError, httpx.ConnectTimeout)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, json=body)
            except retry_on:
                if last:
                    raise
                time.sleep(backoff(attempt, self.backoff_s, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(backoff(attempt, self.backoff_s, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                raise error_of(response.status_code, response.text)
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def health(self) -> Dict[str, Any]:
        return self.request("GET", "/v1/health")

    def create_session(self, role: str = "solver", seed: int = 0, **source: Any) -> Session:
        """`role="solver"` with one of artifact=DIR, artifact_id=ID, instance=LINE;
        `role="injector"` with project=NAME; `tools="swe-agent"` (or "r2e", "spar") picks the
        tool profile."""
        answer = self.request("POST", "/v1/sessions", {"role": role, "seed": seed, **source})
        return Session(self, SessionInfo.from_answer(answer))

    def artifact(self, artifact_id: str, wait: float = 0.0) -> Artifact:
        """An injected artifact's status; `wait` long-polls (at most 60 s) for its reward."""
        return Artifact.from_answer(self.request("GET", f"/v1/artifacts/{artifact_id}?wait={wait}"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SparClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
