"""Adapters from RL frameworks' environment and tool interfaces to spar sessions.

Each module imports its framework only when used: `skyrl` needs skyrl-gym, while `trl` and
`verl` implement their frameworks' interfaces by shape (TRL's `environment_factory` protocol,
verl's `BaseTool` signatures) and import the framework's base class when it is installed.
"""
