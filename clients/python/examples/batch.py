"""Runs a batch of solver episodes concurrently against `spar serve` on one event loop, the way
an asyncio RL rollout worker does: every episode reads the specification's test file, runs the
tests, applies the fix the caller supplies (none, or the artifact's gold fix with --gold) and
submits. Hundreds of sessions stay in flight over one pooled client.

    SPAR_URL=http://127.0.0.1:8765 SPAR_TOKEN=... \
        python examples/batch.py --artifact DIR --episodes 256 --concurrency 256

Prints one JSON line per episode (seed, turns, reward, terminated, truncated), then a summary.
"""

import argparse
import asyncio
import json
import re
import time

from spar_client import AsyncSparClient


async def play(client: AsyncSparClient, artifact: str, seed: int, gold: dict) -> dict:
    async with await client.create_session(role="solver", artifact=artifact, seed=seed) as session:
        turns = 0
        # The specification's diff names the test files; a policy would read and edit here.
        for path in re.findall(r"^\+\+\+ b/(\S+)", session.observation, re.M)[:1]:
            await session.step("read_file", path=path)
            turns += 1
        for path, (old, new) in gold.items():
            await session.step({"name": "edit", "arguments": json.dumps({"path": path, "old": old, "new": new})})
            turns += 1
        step = await session.step("submit")
        turns += 1
        return {"seed": seed, "turns": turns, "reward": step.reward,
                "terminated": step.terminated, "truncated": step.truncated}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact", required=True, help="an artifact directory on the server")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=256, help="sessions in flight at once")
    parser.add_argument("--gold", help="JSON {path: [old, new]}: the fix to apply")
    args = parser.parse_args()
    gold = json.loads(args.gold) if args.gold else {}
    gate = asyncio.Semaphore(args.concurrency)
    started = time.perf_counter()
    async with AsyncSparClient(max_connections=args.concurrency) as client:

        async def bounded(seed: int) -> dict:
            async with gate:
                return await play(client, args.artifact, seed, gold)

        results = await asyncio.gather(*(bounded(s) for s in range(args.episodes)))
    for r in results:
        print(json.dumps(r))
    seconds = time.perf_counter() - started
    print(json.dumps({"mean_reward": sum(r["reward"] for r in results) / len(results),
                      "episodes": len(results), "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    asyncio.run(main())
