"""spar as a SkyRL-gym environment: `SparTextEnv` is a `skyrl_gym` `BaseTextEnv` whose episode
is one spar solver session.

Register it and point a dataset at it:

    from skyrl_gym.envs import register
    register(id="spar", entry_point="spar_client.adapters.skyrl:SparTextEnv")

    # the environment's config (env_config): {"url": ..., "token": ..., "tools": "swe-agent",
    #                                          "max_turns": 32}
    # each dataset row's extras: {"spar": {"artifact_id": ...}} or {"spar": {"instance": LINE}}
    # or {"spar": {"seed": 7}} (a bug drawn from `spar serve --tasks`).

The model's text output is read for one tool call (see `calls.parse_tool_call`); the tool's
output comes back as a user message. The reward is the session's: +1 when `submit` repairs the
bug, -1 when it does not or when the turns run out, 0 before.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from ..client import SparClient
from .calls import NO_CALL, parse_tool_call


def _get(config: Any, key: str, default: Any = None) -> Any:
    """A key of a dict or an omegaconf DictConfig (SkyRL passes either)."""
    if config is None:
        return default
    value = config.get(key, default)
    return default if value is None else value


class SparTextEnv(BaseTextEnv):
    """One spar solver session as a multi-turn text environment."""

    def __init__(self, env_config: Any = None, extras: Optional[Dict[str, Any]] = None):
        super().__init__()
        extras = extras or {}
        self.request: Dict[str, Any] = {"role": "solver", **dict(_get(extras, "spar", {}))}
        self.request.setdefault("tools", _get(env_config, "tools", "swe-agent"))
        self.max_turns = int(_get(extras, "max_turns", _get(env_config, "max_turns", 32)))
        self.client = SparClient(url=_get(env_config, "url"), token=_get(env_config, "token"))
        self.session = None
        self.final_reward = 0.0

    def init(self, prompt):
        """Opens the session; the specification follows the dataset's prompt."""
        self.session = self.client.create_session(**self.request)
        messages = list(prompt or []) + [{"role": "user", "content": self.session.observation}]
        return messages, {"session_id": self.session.id, "tools": self.session.tools}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        call = parse_tool_call(action, self.request["tools"])
        out_of_turns = self.turns >= self.max_turns
        if call is None:
            text, reward, done, error = NO_CALL, (-1.0 if out_of_turns else 0.0), out_of_turns, True
        else:
            step = self.session.step(call)
            done = step.done or out_of_turns
            # An attempt that ends unsubmitted repairs nothing: -1, as spar's own truncation.
            reward = step.reward if step.done else (-1.0 if done else 0.0)
            text, error = step.observation, step.error
        if done:
            self.final_reward = reward
        return BaseTextEnvStepOutput(
            observations=[] if done else [{"role": "user", "content": text}],
            reward=reward,
            done=done,
            metadata={"session_id": self.session.id, "turn": self.turns, "tool_error": error},
            postprocessed_action=None,
        )

    def get_metrics(self) -> Dict[str, Any]:
        return {"turns": self.turns, "solved": float(self.final_reward == 1.0)}

    def close(self):
        if self.session is not None:
            self.session.__exit__(None, None, None)
            self.session = None
        self.client.close()
