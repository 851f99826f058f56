"""verl-style asynchronous rollouts over a Ray cluster: `spar serve` on every node behind one
`spar route`, and one event loop driving many episodes through the router with the same
`AsyncSparClient` a single-machine run uses (verl's AgentLoopWorker and SkyRL's generators run
their tool calls this way: one coroutine per trajectory, awaited HTTP calls in between model
calls).

    python examples/ray_rollouts.py --tasks tasks.jsonl --episodes 64 --concurrency 32
    python examples/ray_rollouts.py --address auto ...      # on a running Ray cluster

`tasks.jsonl` is `spar export`'s output: the bugs travel to every node as lines, and a
seed-only session draws one of them. The "policy" here is a stand-in that greps for the first
name in the specification and submits; replace `policy` with your model's generate call.
Prints one JSON line per episode (node, seed, turns, reward), then a summary by node.
"""

import argparse
import asyncio
import collections
import json
import re
import time

from spar_client import AsyncSparClient


async def policy(observation: str, turn: int) -> dict:
    """Your model goes here: the next tool call from the conversation so far."""
    if turn == 0:
        names = re.findall(r"def (test_\w+)", observation) or ["def"]
        return {"name": "bash", "arguments": json.dumps({"command": f"grep -rn '{names[0]}' ."})}
    return {"name": "submit", "arguments": "{}"}


async def rollout(client: AsyncSparClient, seed: int, max_turns: int = 8) -> dict:
    async with await client.create_session(seed=seed, tools="spar") as session:
        observation, step, turn = session.observation, None, 0
        while turn < max_turns:
            step = await session.step(await policy(observation, turn))
            observation, turn = step.observation, turn + 1
            if step.done:
                break
        return {"node": session.id.split(".")[0], "seed": seed, "turns": turn,
                "reward": step.reward if step else 0.0}


async def rollouts(client: AsyncSparClient, episodes: int, concurrency: int) -> list:
    """`episodes` rollouts, `concurrency` in flight at once, on one event loop."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded(seed: int) -> dict:
        async with gate:
            return await rollout(client, seed)

    return await asyncio.gather(*(bounded(seed) for seed in range(episodes)))


def main() -> None:
    import ray

    from spar_client.ray import SparCluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", required=True, help="a spar export JSONL file")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--address", default=None, help="a Ray cluster's address (default: local)")
    parser.add_argument("--binary", default=None, help="the spar binary (default: $SPAR_BIN or PATH)")
    args = parser.parse_args()
    ray.init(address=args.address)
    with SparCluster(binary=args.binary, tasks=args.tasks) as cluster:
        started = time.perf_counter()

        async def run() -> list:
            async with cluster.async_client(max_connections=args.concurrency) as client:
                return await rollouts(client, args.episodes, args.concurrency)

        results = asyncio.run(run())
        seconds = time.perf_counter() - started
    for result in results:
        print(json.dumps(result))
    by_node = collections.Counter(r["node"] for r in results)
    print(json.dumps({"episodes": len(results), "seconds": round(seconds, 2),
                      "mean_reward": sum(r["reward"] for r in results) / len(results),
                      "episodes_by_node": dict(by_node)}))


if __name__ == "__main__":
    main()
