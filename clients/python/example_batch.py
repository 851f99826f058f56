"""Runs a batch of solver episodes concurrently against `spar serve`, the way an RL rollout
worker would: each episode restores the specification's tests, runs them, tries the fix the
caller supplies (here: none, or the artifact's gold fix when --gold is given) and submits.

    SPAR_URL=http://127.0.0.1:8765 SPAR_TOKEN=... \
        python clients/python/example_batch.py --artifact DIR --episodes 8

Prints one JSON line per episode (seed, turns, reward, terminated, truncated) and the mean reward.
"""

import argparse
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spar_client import SparClient  # noqa: E402


def play(client: SparClient, artifact: str, seed: int, gold: dict) -> dict:
    with client.create_session(role="solver", artifact=artifact, seed=seed) as session:
        turns = 0
        # The specification's diff names the test files; a policy would read and edit here.
        files = re.findall(r"^\+\+\+ b/(\S+)", session.observation, re.M)
        for path in files[:1]:
            session.step("read_file", path=path)
            turns += 1
        for path, (old, new) in gold.items():
            session.step({"name": "edit", "arguments": json.dumps({"path": path, "old": old, "new": new})})
            turns += 1
        step = session.step("submit")
        turns += 1
        return {"seed": seed, "turns": turns, "reward": step.reward,
                "terminated": step.terminated, "truncated": step.truncated}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact", required=True, help="an artifact directory on the server")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--gold", help="JSON {path: [old, new]}: the fix to apply")
    args = parser.parse_args()
    client = SparClient()
    gold = json.loads(args.gold) if args.gold else {}
    with ThreadPoolExecutor(max_workers=args.episodes) as pool:
        results = list(pool.map(lambda s: play(client, args.artifact, s, gold), range(args.episodes)))
    for r in results:
        print(json.dumps(r))
    print(json.dumps({"mean_reward": sum(r["reward"] for r in results) / len(results)}))


if __name__ == "__main__":
    main()
