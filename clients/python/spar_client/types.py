"""What the server answers, as typed values, and the retry policy both clients share."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

DEFAULT_URL = "http://127.0.0.1:8765"

#: Answers that mean the server did not act on the request: safe to send again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class SparError(Exception):
    """The server refused a request: `status` is the HTTP status, `message` its explanation."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Step:
    """Gymnasium's (observation, reward, terminated, truncated, info) for one tool call."""

    observation: str
    error: bool
    reward: float
    terminated: bool
    truncated: bool
    info: Dict[str, Any]
    artifact: Optional[Dict[str, Any]] = None

    @property
    def done(self) -> bool:
        """The episode ended: submitted, or out of turns or context."""
        return self.terminated or self.truncated

    @staticmethod
    def from_answer(answer: Dict[str, Any]) -> "Step":
        return Step(
            observation=answer["observation"]["text"],
            error=answer["observation"]["error"],
            reward=answer["reward"],
            terminated=answer["terminated"],
            truncated=answer["truncated"],
            info=answer.get("info", {}),
            artifact=answer.get("artifact"),
        )


@dataclass(frozen=True)
class Artifact:
    """An injected bug's status: the solver attempts counted so far and, once enough finished,
    the solve rate and the injector's reward."""

    id: str
    attempts_done: int
    attempts_needed: int
    complete: bool
    solve_rate: Optional[float]
    injector_reward: Optional[float]
    fail_to_pass: List[str]
    raw: Dict[str, Any] = field(repr=False)

    @staticmethod
    def from_answer(answer: Dict[str, Any]) -> "Artifact":
        return Artifact(
            id=answer["id"],
            attempts_done=answer.get("attempts_done", 0),
            attempts_needed=answer.get("attempts_needed", 0),
            complete=answer.get("complete", False),
            solve_rate=answer.get("solve_rate"),
            injector_reward=answer.get("injector_reward"),
            fail_to_pass=answer.get("fail_to_pass", []),
            raw=answer,
        )


@dataclass
class SessionInfo:
    """What creating a session answered."""

    id: str
    role: str
    observation: str
    tools: List[Dict[str, Any]]
    task: Optional[str]
    project: Optional[str]
    max_turns: int

    @staticmethod
    def from_answer(answer: Dict[str, Any]) -> "SessionInfo":
        return SessionInfo(
            id=answer["session_id"],
            role=answer["role"],
            observation=answer["observation"]["text"],
            tools=answer.get("tools", []),
            task=answer.get("task"),
            project=answer.get("project"),
            max_turns=answer.get("max_turns", 0),
        )


class SessionView:
    """What both clients' sessions show of what creating them answered."""

    def __init__(self, info: SessionInfo):
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def observation(self) -> str:
        """The first observation: the solver's specification or the injector's instructions."""
        return self.info.observation

    @property
    def tools(self) -> list:
        """The OpenAI function definitions of the session's tool profile."""
        return self.info.tools


def resolve(url: Optional[str], token: Optional[str]) -> tuple:
    """The server's URL and token, from the arguments or SPAR_URL / SPAR_TOKEN."""
    url = (url or os.environ.get("SPAR_URL") or DEFAULT_URL).rstrip("/")
    token = token or os.environ.get("SPAR_TOKEN")
    if not token:
        raise ValueError("give the token spar serve printed: token=... or SPAR_TOKEN")
    return url, token


def step_body(call: Any, arguments: Dict[str, Any]) -> Any:
    """`step("read_file", path="a.py")` as spar's form; an LLM's tool call dict as it is."""
    if isinstance(call, str):
        return {"tool": call, **arguments}
    if arguments:
        raise TypeError("give either a tool name with keyword arguments, or a tool call dict")
    return call


def error_of(status: int, text: str) -> SparError:
    try:
        message = json.loads(text)["error"]
    except Exception:
        message = text
    return SparError(status, message)


def backoff(attempt: int, first: float, retry_after: Optional[str]) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After when it
    gives one, else exponential."""
    if retry_after:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return min(first * (2**attempt), 30.0)
