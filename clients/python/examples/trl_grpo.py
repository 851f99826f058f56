"""GRPO with TRL against spar: each rollout repairs a bug from `spar serve`'s task pool with
SWE-agent's tools, and the reward is spar's grade. Needs `pip install trl` (TRL >= 1.8, with
torch) besides this package; not run by spar's tests (TRL needs torch), whose adapter test checks
the same class against TRL's environment contract.

    spar serve --corpus moneyunits --pool-size 32 &          # prints the token
    SPAR_TOKEN=... python examples/trl_grpo.py --model Qwen/Qwen3-0.6B
"""

import argparse

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from spar_client.adapters.trl import spar_environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="Qwen/Qwen3-0.6B")
    parser.add_argument("--bugs", type=int, default=32, help="dataset rows: seeds into the server's pool")
    parser.add_argument("--url", default=None, help="default: SPAR_URL or http://127.0.0.1:8765")
    args = parser.parse_args()
    system = ("You repair Python repositories. Use the tools; run the tests with "
              "`python -m pytest -q`; call submit when the tests pass.")
    dataset = Dataset.from_dict({
        "prompt": [[{"role": "system", "content": system}]] * args.bugs,
        "spar": [{"seed": seed} for seed in range(args.bugs)],
    })
    trainer = GRPOTrainer(
        model=args.model,
        train_dataset=dataset,
        args=GRPOConfig(chat_template_kwargs={"enable_thinking": False}, max_tool_calling_iterations=32),
        environment_factory=spar_environment(url=args.url),
    )
    trainer.train()


if __name__ == "__main__":
    main()
