"""spar on a Ray cluster: one `spar serve` per node, one `spar route` in front, one client API.

    import ray
    from spar_client.ray import SparCluster

    ray.init()                               # ray.init(address="auto") on a running cluster
    with SparCluster(tasks="tasks.jsonl") as cluster:
        spar = cluster.client()              # a SparClient pointed at the router
        with spar.create_session(role="solver", seed=3, tools="swe-agent") as session:
            ...

Each Ray node gets a `SparNode` actor that starts `spar serve --node-id NAME` there (with a
fresh token, `--workers` = the CPUs the actor reserves), restarts it if it dies, and registers
it with the `SparRouter` actor, which runs `spar route`. Clients talk to the router only: new
sessions go to the least-loaded live node, every later request on a session (and every solver
session on an injector's `artifact_id`) to the node its id names, so an injector's reward is
collected where its artifact lives, as on one machine. Tasks travel as `spar export` lines
(`tasks=`: shipped to every node), never as paths on one machine's disk.

A node whose actor dies takes its sessions with it: requests on them raise `SparError` with
status 410 naming the node, sessions elsewhere go on, and new sessions go to the live nodes.
Every finished episode is in the router's log (`cluster.episodes()`) as soon as the client has
its last step's answer.

The `spar` binary must exist at the same path on every node (`binary=`, else `$SPAR_BIN`, else
`spar` on PATH); each node keeps its own guest cache (`$SPAR_CACHE_DIR` or ~/.cache/spar).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import httpx
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .aio import AsyncSparClient
from .client import SparClient

_LISTENING = re.compile(r"listening on http://(\S+)")


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the thread that started it ends, so a killed
    actor never leaves its server running (Linux; elsewhere the actor's stop() ends it)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _Supervised:
    """One spar process (serve or route), started, watched and restarted by one thread.

    The thread that starts the process is the one that waits for it: the process's parent-death
    signal is tied to that thread, which lives as long as the actor."""

    def __init__(self, argv: List[str], env: Dict[str, str], log_path: str, start_timeout: float):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.start_timeout = start_timeout
        self.address: Optional[str] = None
        self.error: Optional[str] = None
        self.restarts = 0
        self.process: Optional[subprocess.Popen] = None
        self.on_start = lambda address: None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> str:
        """Starts the process and waits until it listens; its address, or `RuntimeError`."""
        self._thread.start()
        self._started.wait()
        if self.address is None:
            raise RuntimeError(self.error or "the spar process did not start")
        return self.address

    def _launch(self) -> Optional[str]:
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                found = _LISTENING.search(log.read().decode(errors="replace"))
            if found:
                return found.group(1)
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        self.error = f"{' '.join(self.argv[:2])} did not start: {self._log_tail()}"
        return None

    def _log_tail(self) -> str:
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")[-2000:]

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            address = self._launch()
            if address is None:
                if not self._started.is_set():
                    self._started.set()
                    return
            else:
                self.address = address
                try:
                    self.on_start(address)
                except Exception as e:  # noqa: BLE001 - reported, then the process is stopped
                    self.error = f"registering {address}: {e}"
                    self.process.kill()
                if not self._started.is_set():
                    self._started.set()
                    if self.error:
                        return
            self.process.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            time.sleep(min(0.2 * self.restarts, 5.0))

    def stop(self, grace: float = 10.0) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _reachable(address: str) -> str:
    """The URL others reach a server at: its node's own address when it bound every one."""
    host, port = address.rsplit(":", 1)
    if host in ("0.0.0.0", "[::]"):
        host = ray.util.get_node_ip_address()
    return f"http://{host}:{port}"


def _find_binary(binary: Optional[str]) -> str:
    path = binary or os.environ.get("SPAR_BIN") or shutil.which("spar")
    if not path:
        raise FileNotFoundError(
            "no spar binary: give binary=PATH (the same path on every node), set SPAR_BIN, or "
            "put spar on PATH (cargo install --path . in the spar checkout)"
        )
    return os.path.abspath(path)


def _check_binary(path: str) -> None:
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"no executable spar at {path} on node {ray.util.get_node_ip_address()}: install "
            "the same binary at the same path on every node"
        )


@ray.remote
class SparRouter:
    """Runs `spar route` on its node and keeps the node registrations in a file the router
    reads at start-up, so that a restarted router has its nodes back before it listens."""

    def __init__(self, binary: str, host: str, port: int, out: str, start_timeout: float):
        _check_binary(binary)
        os.makedirs(out, exist_ok=True)
        self.out = out
        self.token = secrets.token_hex(16)
        self.host = host or ray.util.get_node_ip_address()
        self.nodes: Dict[str, Dict[str, str]] = {}
        self._lock = threading.Lock()
        # The registrations a restarted router starts with (they hold the nodes' tokens).
        self.nodes_file = os.path.join(out, "nodes.json")
        self._write_nodes()
        argv = [binary, "route", "--host", self.host, "--port", str(port), "--out", out,
                "--nodes", self.nodes_file]
        env = {**os.environ, "SPAR_TOKEN": self.token}
        self.process = _Supervised(argv, env, os.path.join(out, "route.log"), start_timeout)
        address = self.process.start()
        # A restart keeps the port: clients hold the router's URL.
        self.process.argv[self.process.argv.index("--port") + 1] = address.rsplit(":", 1)[1]
        self.url = _reachable(address)

    def _write_nodes(self) -> None:
        partial = self.nodes_file + ".partial"
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.nodes, f)
        os.replace(partial, self.nodes_file)

    def _put(self, url: str, name: str, node: Dict[str, str]) -> None:
        answer = httpx.put(
            f"{url}/v1/nodes/{name}",
            json=node,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"registering node {name}: {answer.status_code} {answer.text}")

    def address(self) -> Dict[str, str]:
        """The router's URL and its clients' token."""
        return {"url": self.url, "token": self.token}

    def info(self) -> Dict[str, Any]:
        """Its URL, process id and restarts."""
        process = self.process.process
        return {"url": self.url, "pid": process.pid if process else None,
                "restarts": self.process.restarts}

    def register(self, name: str, url: str, token: str) -> None:
        """Adds (or, for a restarted server, replaces) a node."""
        node = {"url": url, "token": token}
        self._put(self.url, name, node)
        with self._lock:
            self.nodes[name] = node
            self._write_nodes()

    def episodes(self) -> List[Dict[str, Any]]:
        """Every episode that finished through the router (its episodes.jsonl)."""
        path = os.path.join(self.out, "episodes.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as log:
            return [json.loads(line) for line in log if line.strip()]

    def stop(self) -> None:
        self.process.stop()


@ray.remote
class SparNode:
    """Runs `spar serve --node-id NAME` on its node, restarts it if it dies, and registers
    every (re)start with the router."""

    def __init__(
        self,
        name: str,
        binary: str,
        workers: int,
        host: str,
        serve_args: Sequence[str],
        tasks: Optional[List[str]],
        out: str,
        router: "ray.actor.ActorHandle",
        start_timeout: float,
    ):
        _check_binary(binary)
        os.makedirs(out, exist_ok=True)
        self.name = name
        self.token = secrets.token_hex(16)
        self.router = router
        host = host or ray.util.get_node_ip_address()
        argv = [binary, "serve", "--node-id", name, "--host", host, "--port", "0"]
        argv += ["--workers", str(workers), "--out", out]
        if tasks:
            path = os.path.join(out, "tasks.jsonl")
            with open(path, "w") as f:
                f.writelines(line if line.endswith("\n") else line + "\n" for line in tasks)
            argv += ["--tasks", path]
        argv += list(serve_args)
        env = {**os.environ, "SPAR_TOKEN": self.token}
        self.process = _Supervised(argv, env, os.path.join(out, "serve.log"), start_timeout)
        self.process.on_start = self._on_start
        self.process.start()

    def _on_start(self, address: str) -> None:
        self.url = _reachable(address)
        ray.get(self.router.register.remote(self.name, self.url, self.token))

    def info(self) -> Dict[str, Any]:
        """Its name, server URL, server pid, restarts and Ray node."""
        return {
            "name": self.name,
            "url": self.url,
            "pid": self.process.process.pid if self.process.process else None,
            "restarts": self.process.restarts,
            "ray_node": ray.get_runtime_context().get_node_id(),
        }

    def health(self) -> Dict[str, Any]:
        """The server's own `/v1/health`."""
        return httpx.get(f"{self.url}/v1/health", timeout=10).json()

    def stop(self) -> None:
        self.process.stop()


class SparCluster:
    """spar on every alive node of the connected Ray cluster (call `ray.init` first), behind
    one router. `client()` and `async_client()` are the single-machine clients, pointed at it.

    Arguments: `binary` the spar executable (same path on every node); `workers` sandbox runs
    per node (default: the node's CPUs), which the node's actor reserves as Ray CPUs unless
    `reserve_cpus=False`; `tasks` a `spar export` JSONL file (or its lines) every node draws
    seed-only resets from; `serve_args` more `spar serve` flags (`["--tools", "swe-agent"]`);
    `host` the address servers bind (default: each node's IP); `out` each node's directory
    for logs and artifacts (default: a fresh temporary directory per node); `nodes` at most
    this many Ray nodes; `start_timeout` seconds a server may take to start (the first start
    on a node may fetch and compile the guest)."""

    def __init__(
        self,
        binary: Optional[str] = None,
        workers: Optional[int] = None,
        tasks: Any = None,
        serve_args: Sequence[str] = (),
        host: str = "",
        out: Optional[str] = None,
        nodes: Optional[int] = None,
        reserve_cpus: bool = True,
        start_timeout: float = 600.0,
    ):
        if not ray.is_initialized():
            raise RuntimeError("connect to Ray first: ray.init() (or ray.init(address='auto'))")
        binary = _find_binary(binary)
        lines = _task_lines(tasks)
        out = out or tempfile.mkdtemp(prefix="spar-ray-")
        here = ray.get_runtime_context().get_node_id()
        self.router = SparRouter.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
        ).remote(binary, host, 0, os.path.join(out, "router"), start_timeout)
        address = ray.get(self.router.address.remote())
        self.url, self.token = address["url"], address["token"]
        alive = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        self.nodes: Dict[str, Any] = {}
        for index, node in enumerate(alive[:nodes] if nodes else alive):
            cpus = workers or max(1, int(node["Resources"]["CPU"]))
            name = f"n{index}"
            self.nodes[name] = SparNode.options(
                num_cpus=cpus if reserve_cpus else 0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(name, binary, cpus, host, list(serve_args), lines, os.path.join(out, name),
                     self.router, start_timeout)
        print(f"spar_client.ray: starting spar serve on {len(self.nodes)} nodes behind {self.url} "
              f"(a node's first start fetches and compiles the guest: minutes; logs: "
              f"{out}/nK/serve.log on each node)", file=sys.stderr, flush=True)
        try:
            self.info()
        except Exception:
            self.shutdown()
            raise

    def client(self, **options: Any) -> SparClient:
        """A `SparClient` pointed at the router."""
        return SparClient(self.url, self.token, **options)

    def async_client(self, **options: Any) -> AsyncSparClient:
        """An `AsyncSparClient` pointed at the router."""
        return AsyncSparClient(self.url, self.token, **options)

    def info(self) -> Dict[str, Dict[str, Any]]:
        """Each live node's name, server URL, pid, restarts and Ray node id."""
        return dict(zip(self.nodes, ray.get([n.info.remote() for n in self.nodes.values()])))

    def router_info(self) -> Dict[str, Any]:
        """The router's URL, process id and restarts."""
        return ray.get(self.router.info.remote())

    def health(self) -> Dict[str, Any]:
        """The router's `/v1/health`: live nodes, their sessions and busy workers."""
        return httpx.get(f"{self.url}/v1/health", timeout=10).json()

    def episodes(self) -> List[Dict[str, Any]]:
        """Every episode that finished through the router."""
        return ray.get(self.router.episodes.remote())

    def kill_node(self, name: str, timeout: float = 30.0) -> None:
        """Kills a node's actor (and with it its server), as a failing machine would, and
        returns once the router has seen the node go down."""
        ray.kill(self.nodes.pop(name), no_restart=True)
        deadline = time.monotonic() + timeout
        while any(n["name"] == name and n["alive"] for n in self.health()["nodes"]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {name} still answers {timeout} s after its actor was killed")
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stops every server and the router, and releases the actors."""
        for actor in list(self.nodes.values()) + [self.router]:
            try:
                ray.get(actor.stop.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing to stop
                pass
            ray.kill(actor, no_restart=True)
        self.nodes.clear()

    def __enter__(self) -> "SparCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def _task_lines(tasks: Any) -> Optional[List[str]]:
    """`spar export` lines from a path or a list of lines (or dicts); `None` for none."""
    if tasks is None:
        return None
    if isinstance(tasks, (str, os.PathLike)):
        with open(tasks) as f:
            lines = [line for line in f if line.strip()]
    else:
        lines = [t if isinstance(t, str) else json.dumps(t) for t in tasks]
    for line in lines:
        json.loads(line)  # a malformed line fails here, not on every node
    return lines
