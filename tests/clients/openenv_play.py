"""OpenEnv's own clients (openenv-core, unmodified) play spar episodes; run by tests/openenv.rs.

Usage: openenv_play.py BASE_URL_WITH_TOKEN BASE_URL_WITHOUT_TOKEN FIX_OLD FIX_NEW
Prints one JSON line per check; exits non-zero on the first failure.
"""

import asyncio
import json
import sys

from openenv.core import GenericEnvClient, MCPToolClient

url, bare, old, new = sys.argv[1:5]
fix = {"name": "edit", "arguments": {"path": "calc/ops.py", "old": old, "new": new}}


def report(check, **facts):
    print(json.dumps({"check": check, **facts}), flush=True)


def sync_episode():
    env = GenericEnvClient(base_url=url).sync()
    with env:
        first = env.reset(seed=5, episode_id="sync-1", note="unknown fields are ignored")
        assert "Please fix the code" in first.observation["text"], first
        assert first.reward is None and first.done is False, first
        grep = env.step({"tool": "bash", "command": "grep -n 'return a + b' calc/ops.py"})
        assert grep.observation["text"].startswith("2:"), grep
        env.step(fix)
        end = env.step({"tool": "submit"})
        state = env.state()
    report("sync", reward=end.reward, done=end.done, steps=state["step_count"],
           session=first.observation["session_id"])


async def async_episode():
    async with GenericEnvClient(base_url=url) as env:
        first = await env.reset(seed=6)
        tests = await env.step({"tool": "bash", "command": "python -m pytest -q tests 2>&1 | tail -1"})
        end = await env.step({"tool": "submit"})
        report("async", reward=end.reward, done=end.done, tests=tests.observation["text"],
               task=first.observation["task"])


async def mcp_episode():
    async with MCPToolClient(base_url=url) as env:
        await env.reset(seed=7, tools="swe-agent")
        tools = await env.list_tools()
        pwd = await env.call_tool("bash", command="cd calc && pwd")
        try:
            await env.call_tool("read_file", path="calc/ops.py")
            refused = None
        except RuntimeError as e:
            refused = str(e)
        report("mcp", tools=[t.name for t in tools], pwd=pwd, refused=refused)


def no_token():
    try:
        with GenericEnvClient(base_url=bare).sync() as env:
            env.reset(seed=1)
        report("no-token", connected=True)
    except Exception as e:  # the handshake is refused with 401
        report("no-token", connected=False, error=type(e).__name__)


sync_episode()
asyncio.run(async_episode())
asyncio.run(mcp_episode())
no_token()
