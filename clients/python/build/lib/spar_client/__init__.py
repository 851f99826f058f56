"""Clients for `spar serve`: SSR episodes over HTTP/JSON, synchronous and asyncio.

    from spar_client import SparClient

    with SparClient("http://127.0.0.1:8765", token="...") as spar:   # or SPAR_URL / SPAR_TOKEN
        with spar.create_session(role="solver", artifact_id="...", tools="swe-agent") as session:
            print(session.observation)                # the specification
            step = session.step("bash", command="grep -rn 'def add' .")
            step = session.step({"name": "bash", "arguments": '{"command": "python -m pytest -q"}'})
            step = session.step("submit")
            print(step.reward, step.terminated, step.truncated)

    from spar_client import AsyncSparClient           # the same API, awaited

`session.tools` holds the OpenAI function definitions of the session's tool profile (spar,
swe-agent or r2e) to hand to an LLM; `session.step` accepts an LLM's tool call as it comes
(`{"name": ..., "arguments": "..."}`, or the whole `{"type": "function", "function": {...}}`).
Connections are pooled and reused; requests the server did not act on (refused connections,
429, 503) are retried with exponential backoff. Errors from the server raise `SparError`, whose
message says what was wrong and what to send instead.
"""

from .aio import AsyncSession, AsyncSparClient
from .client import Session, SparClient
from .types import Artifact, SparError, Step

__all__ = [
    "SparClient",
    "Session",
    "AsyncSparClient",
    "AsyncSession",
    "Step",
    "Artifact",
    "SparError",
]
