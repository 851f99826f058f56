"""Tool calls in a model's text output, for frameworks that hand the environment raw text.

Recognised, first match wins:
- `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen, Hermes and most chat
  templates with tool use);
- a message that is one JSON object `{"name": ..., "arguments": ...}` (or spar's
  `{"tool": ..., ...}`);
- a fenced ```bash block, as mini-swe-agent's models write commands: the `bash` tool of the
  swe-agent and spar profiles (`execute_bash` for r2e).
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
_FENCED = re.compile(r"```(?:bash|sh|shell)\s*\n(.*?)```", re.S)

#: What the environment answers when a message holds no tool call.
NO_CALL = (
    "No tool call found. Call exactly one tool per message, as "
    '<tool_call>{"name": TOOL, "arguments": {...}}</tool_call>.'
)


def parse_tool_call(text: str, profile: str = "swe-agent") -> Optional[Dict[str, Any]]:
    """The first tool call in `text` as `{"name", "arguments"}` (or spar's own form), or
    `None` when there is none."""
    for found in _TAGGED.findall(text):
        call = _json_object(found)
        if call is not None:
            return call
    call = _json_object(text.strip())
    if call is not None and ("name" in call or "tool" in call):
        return call
    fenced = _FENCED.search(text)
    if fenced:
        if profile == "r2e":
            return {"name": "execute_bash", "arguments": {"cmd": fenced.group(1).strip()}}
        return {"name": "bash", "arguments": {"command": fenced.group(1).strip()}}
    return None


def _json_object(text: str) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
