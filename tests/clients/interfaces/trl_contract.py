"""The contract `trl.GRPOTrainer(environment_factory=...)` holds an environment to (TRL 1.16.0,
`trl/trainer/grpo_trainer.py`; transformers' `get_json_schema` for the tool schemas), as a
checker: TRL itself needs torch and transformers >= 5.2.

- the factory is called with no arguments; instances are reused across rollouts;
- `reset(**row)` gets the whole dataset row and returns `None` or a string appended to the
  last user message;
- the tools are the functions defined on the class whose names do not start with `_`, except
  `reset` and `get_reward`; each needs a docstring, a type hint on every parameter and an
  `Args:` line for every parameter (transformers raises otherwise); parameters without a
  default are required; a tool's return value becomes the tool message as `str(result)`, an
  exception as `{"error": str(e)}`;
- `get_reward()` (no arguments) scores a finished rollout.
"""

import inspect
import re
import typing

_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def tools(environment_class):
    """The tool methods TRL finds on the class, with the JSON schema transformers would build."""
    found = {}
    for name, function in inspect.getmembers(environment_class, predicate=inspect.isfunction):
        if name.startswith("_") or name in ("reset", "get_reward"):
            continue
        found[name] = _schema(name, function)
    return found


def _schema(name, function):
    doc = inspect.getdoc(function)
    if not doc:
        raise ValueError(f"{name}: a tool needs a docstring")
    hints = typing.get_type_hints(function)
    args = re.search(r"Args:\n(.*?)(?:\n\s*\n|\Z|\n\S)", doc + "\n", re.S)
    described = set(re.findall(r"^\s*(\w+)(?:\s*\(.*?\))?:", args.group(1), re.M)) if args else set()
    properties, required = {}, []
    for parameter in list(inspect.signature(function).parameters.values())[1:]:
        if parameter.name not in hints:
            raise TypeError(f"{name}: parameter {parameter.name} has no type hint")
        if parameter.name not in described:
            raise ValueError(f"{name}: parameter {parameter.name} has no Args: description")
        hint = hints[parameter.name]
        base = typing.get_origin(hint) or hint
        if base is typing.Union:
            base = next(a for a in typing.get_args(hint) if a is not type(None))
            base = typing.get_origin(base) or base
        properties[parameter.name] = {"type": _TYPES[base]}
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    return {"name": name, "description": doc.split("\n\n")[0], "parameters": {
        "type": "object", "properties": properties, "required": required}}


def call(environment, name, arguments):
    """A tool call as TRL makes it: the result as a string, an exception as an error dict."""
    try:
        result = getattr(environment, name)(**arguments)
    except Exception as e:  # noqa: BLE001 - TRL turns every exception into the tool message
        return str({"error": str(e)})
    return result if isinstance(result, list) else str(result)
