"""The asyncio client: the same API as `SparClient`, awaited, for rollout workers on an event
loop (verl, SkyRL, OpenRLHF, verifiers) that must not block it."""

from __future__ import annotations

import asyncio
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


class AsyncSession(SessionView):
    """One episode on the server; an async context manager that closes it."""

    def __init__(self, client: "AsyncSparClient", info: SessionInfo):
        super().__init__(info)
        self.client = client

    async def step(self, call: Any, **arguments: Any) -> Step:
        """One tool call: `await step("bash", command="ls")`, or an LLM's tool call dict."""
        body = step_body(call, arguments)
        return Step.from_answer(await self.client.request("POST", f"/v1/sessions/{self.id}/step", body))

    async def state(self) -> Dict[str, Any]:
        return await self.client.request("GET", f"/v1/sessions/{self.id}")

    async def close(self) -> None:
        await self.client.request("DELETE", f"/v1/sessions/{self.id}")

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.close()
        except (SparError, httpx.HTTPError):
            pass


class AsyncSparClient:
    """An asyncio client of `spar serve`: one connection pool for every session of a loop."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 600.0,
        retries: int = 5,
        backoff_s: float = 0.25,
        max_connections: int = 256,
    ):
        self.url, token = resolve(url, token)
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request, retried while the server did not act on it; `SparError` otherwise."""
        # A request that may have reached the server is sent again only when repeating it is
        # harmless; a refused connection never reached it.
        idempotent = method in ("GET", "DELETE")
        retry_on = httpx.TransportError if idempotent else (httpx.ConnectError, httpx.ConnectTimeout)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._http.request(method, path, json=body)
            except retry_on:
                if last:
                    raise
                await asyncio.sleep(backoff(attempt, self.backoff_s, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(backoff(attempt, self.backoff_s, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                raise error_of(response.status_code, response.text)
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    async def health(self) -> Dict[str, Any]:
        return await self.request("GET", "/v1/health")

    async def create_session(self, role: str = "solver", seed: int = 0, **source: Any) -> AsyncSession:
        """As `SparClient.create_session`."""
        answer = await self.request("POST", "/v1/sessions", {"role": role, "seed": seed, **source})
        return AsyncSession(self, SessionInfo.from_answer(answer))

    async def artifact(self, artifact_id: str, wait: float = 0.0) -> Artifact:
        """An injected artifact's status; `wait` long-polls (at most 60 s) for its reward."""
        return Artifact.from_answer(await self.request("GET", f"/v1/artifacts/{artifact_id}?wait={wait}"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncSparClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
