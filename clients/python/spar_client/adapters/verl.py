"""spar's tools as verl tools: `SparTool` is a `verl.tools.base_tool.BaseTool` (verl >= 0.6),
one class for every tool of a profile, configured by `examples/verl_tool_config.yaml`.

verl's tool agent loop calls `create`, `execute` and `release` around every tool call, so the
spar session belongs to the trajectory, not to an `instance_id`: it is keyed by the
trajectory's `agent_data.request_id` (verl >= 0.7; the instance id otherwise), opened at the
trajectory's first tool call from the row's `tools_kwargs[TOOL].create_kwargs` (`{"instance":
LINE}` from `spar export`, whose `problem_statement` is the row's prompt; or `{"artifact_id":
...}`, or `{"seed": N}` for the server's pool), and closed when the episode ends. The step
reward is the session's (+1/-1 on submit); it is also left in `agent_data.extra_fields
["spar_reward"]` for a `compute_score` to read.

verl imports torch; without verl installed this module does not import.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Tuple

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from ..aio import AsyncSession, AsyncSparClient

#: Open sessions by trajectory, shared by the tool instances of one worker process.
_SESSIONS: Dict[str, AsyncSession] = {}
_PENDING: Dict[str, Dict[str, Any]] = {}
_LOCK = asyncio.Lock()


class SparTool(BaseTool):
    """A spar tool (its name is the schema's) over the trajectory's spar session. Config keys:
    `url`, `token` (default SPAR_URL, SPAR_TOKEN), `tools` (the profile, default swe-agent)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema):
        super().__init__(config, tool_schema)
        self.profile = config.get("tools", "swe-agent")
        self._client: Optional[AsyncSparClient] = None

    def client(self) -> AsyncSparClient:
        # Made on first use: verl builds tools outside the event loop that runs them.
        if self._client is None:
            self._client = AsyncSparClient(url=self.config.get("url"), token=self.config.get("token"))
        return self._client

    async def create(self, instance_id: Optional[str] = None, **kwargs) -> Tuple[str, ToolResponse]:
        instance_id, response = await super().create(instance_id)
        _PENDING[instance_id] = dict(kwargs.get("create_kwargs") or kwargs)
        return instance_id, response

    async def execute(self, instance_id: str, parameters: Dict[str, Any], **kwargs) -> Tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        key = getattr(agent_data, "request_id", None) or instance_id
        session = await self._session(key, _PENDING.get(instance_id, {}))
        step = await session.step({"name": self.name, "arguments": parameters})
        metrics = {"turn": step.info.get("turn", 0), "tool_error": step.error}
        if step.done:
            async with _LOCK:
                _SESSIONS.pop(key, None)
            await session.close()
            if agent_data is not None:
                agent_data.extra_fields["spar_reward"] = step.reward
        return ToolResponse(text=step.observation), step.reward, metrics

    async def release(self, instance_id: str, **kwargs) -> None:
        _PENDING.pop(instance_id, None)

    async def _session(self, key: str, create_kwargs: Dict[str, Any]) -> AsyncSession:
        async with _LOCK:
            session = _SESSIONS.get(key)
            if session is None:
                request = {"role": "solver", "tools": self.profile, **create_kwargs}
                session = await self.client().create_session(**request)
                _SESSIONS[key] = session
            return session
