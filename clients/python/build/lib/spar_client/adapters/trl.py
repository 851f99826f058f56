"""spar as a TRL environment: `environment_factory` for `trl.GRPOTrainer` (TRL >= 1.8).

    from spar_client.adapters.trl import spar_environment

    trainer = GRPOTrainer(
        model=..., train_dataset=dataset,          # rows: {"prompt": [...], "spar": {...}}
        environment_factory=spar_environment(url=..., token=...),
    )

TRL calls the factory with no arguments and reuses the instances; `reset(**row)` closes the
previous episode and opens a session from the row's `spar` column (`{"artifact_id": ...}`,
`{"instance": LINE}`, or `{"seed": N}` for a bug from `spar serve --tasks`; top-level
`artifact_id`, `instance` or `seed` columns work too) and returns the specification, which TRL
appends to the prompt. The tools are SWE-agent's (`bash`, `str_replace_editor`, `submit`),
as methods with the docstrings TRL turns into tool schemas; `get_reward()` is the session's
reward (+1 repaired, -1 not, 0 while unsubmitted). TRL has no teardown hook: the open episodes
are closed at exit, or by `SparToolEnv.close_all()` (every public function of the class would be
a tool, so closing is a class method).
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any, Dict, List, Optional

from ..client import Session, SparClient


class SparToolEnv:
    """One reusable TRL environment: a spar solver session per rollout."""

    url: Optional[str] = None
    token: Optional[str] = None
    _open: "weakref.WeakSet[SparToolEnv]" = weakref.WeakSet()

    def __init__(self) -> None:
        self._client = SparClient(url=self.url, token=self.token)
        self._session: Optional[Session] = None
        self.reward = 0.0
        self.done = False
        SparToolEnv._open.add(self)

    def reset(self, **row: Any) -> Optional[str]:
        """Starts the rollout's episode; returns its specification."""
        self._end_session()
        request: Dict[str, Any] = dict(row.get("spar") or {})
        for key in ("artifact_id", "instance", "artifact", "seed"):
            if key in row and key not in request:
                request[key] = row[key]
        self._session = self._client.create_session(role="solver", tools="swe-agent", **request)
        self.reward, self.done = 0.0, False
        return self._session.observation

    def bash(self, command: str) -> str:
        """
        Run a command line in a shell over the repository (mounted at /repo; the working
        directory persists between calls). Python and pytest run in the sandbox.

        Args:
            command: The bash command to execute.

        Returns:
            What the command printed.
        """
        return self._step("bash", command=command)

    def str_replace_editor(
        self,
        command: str,
        path: str,
        file_text: Optional[str] = None,
        old_str: Optional[str] = None,
        new_str: Optional[str] = None,
        insert_line: Optional[int] = None,
        view_range: Optional[List[int]] = None,
    ) -> str:
        """
        Custom editing tool for viewing, creating and editing files: view, create, str_replace,
        insert, undo_edit.

        Args:
            command: The command to run: view, create, str_replace, insert or undo_edit.
            path: Absolute path to file or directory, e.g. /repo/file.py or /repo.
            file_text: Required for create: the content of the file to be created.
            old_str: Required for str_replace: the exact text in path to replace.
            new_str: The replacement for str_replace, or the text to insert for insert.
            insert_line: Required for insert: new_str is inserted after this line.
            view_range: For view: [first, last] line numbers; last -1 means to the end.

        Returns:
            The editor's answer.
        """
        arguments = {
            "command": command,
            "path": path,
            "file_text": file_text,
            "old_str": old_str,
            "new_str": new_str,
            "insert_line": insert_line,
            "view_range": view_range,
        }
        return self._step("str_replace_editor", **{k: v for k, v in arguments.items() if v is not None})

    def submit(self) -> str:
        """
        Submit the current state of the repository for grading; ends the episode.

        Returns:
            Whether the tests pass.
        """
        return self._step("submit")

    def get_reward(self) -> float:
        """The rollout's reward: +1 repaired, -1 not, 0 while unsubmitted."""
        return self.reward

    @classmethod
    def close_all(cls) -> None:
        """Ends every instance's open episode and releases its connections."""
        for env in list(SparToolEnv._open):
            env._end_session()
            env._client.close()

    def _step(self, tool: str, **arguments: Any) -> str:
        if self._session is None:
            raise ValueError("no episode: reset() starts one")
        if self.done:
            raise ValueError("The episode has ended.")
        step = self._session.step(tool, **arguments)
        if step.done:
            self.reward, self.done = step.reward, True
        return step.observation

    def _end_session(self) -> None:
        if self._session is not None:
            self._session.__exit__(None, None, None)
            self._session = None


atexit.register(SparToolEnv.close_all)


def spar_environment(url: Optional[str] = None, token: Optional[str] = None) -> type:
    """A zero-argument environment class bound to a server (default: SPAR_URL, SPAR_TOKEN)."""
    return type("SparToolEnv", (SparToolEnv,), {"url": url, "token": token})
