"""Registering spar as a SkyRL-gym environment and playing one episode with a scripted policy
(a stand-in for the model's text output). Needs `pip install ./clients/python[skyrl]`.

    spar serve --corpus moneyunits --pool-size 8 &            # prints the token
    SPAR_TOKEN=... python examples/skyrl_env.py

In a SkyRL training config the environment is `spar` and each dataset row carries its bug in
`extras`: `{"spar": {"seed": N}}` (the server's pool), `{"spar": {"instance": LINE}}` or
`{"spar": {"artifact_id": ID}}`.
"""

import os

import skyrl_gym
from skyrl_gym.envs import register

register(id="spar", entry_point="spar_client.adapters.skyrl:SparTextEnv")

env = skyrl_gym.make(
    "spar",
    env_config={"url": os.environ.get("SPAR_URL"), "token": os.environ["SPAR_TOKEN"], "max_turns": 8},
    extras={"spar": {"seed": 0}},
)
messages, info = env.init([{"role": "system", "content": "You repair Python repositories."}])
print(messages[-1]["content"][:400])
for text in [
    '<tool_call>{"name": "bash", "arguments": {"command": "python -m pytest -q 2>&1 | tail -3"}}</tool_call>',
    '<tool_call>{"name": "submit", "arguments": {}}</tool_call>',
]:
    out = env.step(text)
    print(out["reward"], out["done"], out["observations"][:1])
env.close()
