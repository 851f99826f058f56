"""spar's Python client package and its adapters against a live `spar serve`; run by
tests/python_clients.rs with the package installed from clients/python.

Usage: spar_client_play.py URL TOKEN ARTIFACT_DIR FIX_OLD FIX_NEW VERL_TOOL_CONFIG
With tests/clients/interfaces on PYTHONPATH (the TRL contract and verl's interfaces).
Prints one JSON line per check; raises on the first failure.
"""

import asyncio
import json
import sys

from spar_client import AsyncSparClient, SparClient, SparError

url, token, artifact, old, new = sys.argv[1:6]
ops = "/repo/calc/ops.py"


def report(check, **facts):
    print(json.dumps({"check": check, **facts}), flush=True)


def sync_swe_agent():
    with SparClient(url, token) as spar:
        with spar.create_session(artifact=artifact, tools="swe-agent", seed=1) as session:
            names = [t["function"]["name"] for t in session.tools]
            grep = session.step("bash", command="grep -rn 'return a + b' calc")
            edit = session.step({"type": "function", "function": {"name": "str_replace_editor", "arguments": json.dumps(
                {"command": "str_replace", "path": ops, "old_str": old, "new_str": new})}})
            end = session.step("submit")
            state = session.state()
        try:
            spar.create_session(artifact_id="nope")
            refused = None
        except SparError as e:
            refused = [e.status, e.message]
    report("sync", tools=names, grep=grep.observation, edited=edit.observation.startswith("The file"),
           reward=end.reward, done=end.done, turn=state["turn"], refused=refused)


async def async_r2e():
    async with AsyncSparClient(url, token) as spar:
        async with await spar.create_session(artifact=artifact, tools="r2e", seed=2) as session:
            search = await session.step("search", search_term="def sub")
            end = await session.step("finish", command="submit")
    report("async", search=search.observation, reward=end.reward, terminated=end.terminated)


def skyrl():
    import skyrl_gym
    from skyrl_gym.envs import register
    from skyrl_gym.envs.base_text_env import BaseTextEnv

    # As a training config does: registered by id, made with the env config and a row's extras.
    register(id="spar", entry_point="spar_client.adapters.skyrl:SparTextEnv")
    env = skyrl_gym.make("spar", env_config={"url": url, "token": token, "max_turns": 8},
                         extras={"spar": {"seed": 4}})
    prompt, info = env.init([{"role": "system", "content": "You repair bugs."}])
    outputs = [
        env.step("Let me look.\n<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"grep -n 'return a + b' calc/ops.py\"}}\n</tool_call>"),
        env.step("I think the bug is here."),
        env.step("```bash\ncd calc && python -c 'import ops; print(ops.sub(5, 3))'\n```"),
        env.step(json.dumps({"name": "str_replace_editor", "arguments": {
            "command": "str_replace", "path": ops, "old_str": old, "new_str": new}})),
        env.step("<tool_call>{\"name\": \"submit\", \"arguments\": {}}</tool_call>"),
    ]
    metrics = env.get_metrics()
    env.close()
    report("skyrl", base=isinstance(env, BaseTextEnv), prompt_roles=[m["role"] for m in prompt],
           tools=len(info["tools"]), first=outputs[0]["observations"][0]["content"],
           no_call=outputs[1]["observations"][0]["content"], python=outputs[2]["observations"][0]["content"],
           rewards=[o["reward"] for o in outputs], done=[o["done"] for o in outputs], metrics=metrics)


def trl():
    import trl_contract
    from spar_client.adapters.trl import spar_environment

    env_class = spar_environment(url=url, token=token)
    schemas = trl_contract.tools(env_class)
    env = env_class()
    spec = env.reset(prompt=[{"role": "user", "content": "Repair the bug."}], spar={"seed": 3})
    grep = trl_contract.call(env, "bash", {"command": "grep -c 'return a + b' calc/ops.py"})
    trl_contract.call(env, "str_replace_editor", {"command": "str_replace", "path": ops, "old_str": old, "new_str": new})
    end = trl_contract.call(env, "submit", {})
    reward = env.get_reward()
    after = trl_contract.call(env, "bash", {"command": "ls"})
    env.reset(seed=9)
    fresh = env.get_reward()
    env_class.close_all()
    report("trl", tools=sorted(schemas), required=schemas["str_replace_editor"]["parameters"]["required"],
           spec="Please fix the code" in spec, grep=grep, end=end, reward=reward, after=after, fresh=fresh)


async def verl():
    import yaml
    from verl.tools.schemas import OpenAIFunctionToolSchema
    from spar_client.adapters.verl import SparTool

    with open(sys.argv[6]) as f:
        entries = yaml.safe_load(f)["tools"]
    tools = {}
    for entry in entries:
        config = {**entry["config"], "url": url, "token": token}
        tool = SparTool(config=config, tool_schema=OpenAIFunctionToolSchema.model_validate(entry["tool_schema"]))
        tools[tool.name] = tool

    class AgentData:  # the fields of verl's AgentData that a tool reads
        request_id = "trajectory-1"
        extra_fields = {}

    agent_data = AgentData()

    async def call(name, arguments):
        # verl 0.9.1's ToolAgentLoop._call_tool: create, execute, release around every call.
        tool = tools[name]
        instance_id, _ = await tool.create(create_kwargs={"seed": 5})
        try:
            return await tool.execute(instance_id, arguments, agent_data=agent_data)
        finally:
            await tool.release(instance_id)

    pwd, _, _ = await call("bash", {"command": "cd calc && pwd"})
    same, _, _ = await call("bash", {"command": "pwd"})
    await call("str_replace_editor", {"command": "str_replace", "path": ops, "old_str": old, "new_str": new})
    end, reward, metrics = await call("submit", {})
    report("verl", tools=sorted(tools), pwd=pwd.text, same=same.text, end=end.text, reward=reward,
           extra=agent_data.extra_fields, turn=metrics["turn"])


sync_swe_agent()
asyncio.run(async_r2e())
skyrl()
trl()
asyncio.run(verl())
