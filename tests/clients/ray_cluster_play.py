"""spar_client.ray on a real local Ray cluster of two nodes (ray.cluster_utils.Cluster); run by
tests/ray_cluster.rs with the client package and ray installed.

Usage: ray_cluster_play.py SPAR_BINARY TASKS_JSONL OUT_DIR RAY_ROLLOUTS_EXAMPLE
Prints one JSON line per check; raises on the first failure; always stops the cluster.
"""

import asyncio
import importlib.util
import json
import os
import signal
import sys
import time

import ray
from ray.cluster_utils import Cluster

from spar_client import SparError
from spar_client.ray import SparCluster

binary, tasks, out, example = sys.argv[1:5]
BUG = "sed -i 's/self.factor \\* other.factor,/self.factor \\/ other.factor,/' moneyunits/units.py"
FIX = "sed -i '122s/self.factor \\/ other.factor,/self.factor * other.factor,/' moneyunits/units.py"


def report(check, **facts):
    print(json.dumps({"check": check, **facts}), flush=True)


def node_of(session_or_id):
    return getattr(session_or_id, "id", session_or_id).split(".")[0]


def wait_until(what, condition, limit=60.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def placement(cluster, client):
    sessions = [client.create_session(seed=seed) for seed in range(4)]
    finished = []
    for session in sessions:
        session.step("bash", command="ls")
        end = session.step("submit")
        assert end.done, end
        finished.append(session.id)
        session.close()
    rays = {info["ray_node"] for info in cluster.info().values()}
    report("placement", nodes=sorted({node_of(s) for s in sessions}), ray_nodes=len(rays),
           spread=[node_of(s) for s in sessions])
    return finished


def async_rollouts(cluster):
    """The verl-style example's rollouts: one event loop, the async client, the router."""
    spec = importlib.util.spec_from_file_location("ray_rollouts", example)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    async def run():
        async with cluster.async_client() as client:
            return await module.rollouts(client, 8, 4)

    results = asyncio.run(run())
    report("async", episodes=len(results), nodes=sorted({r["node"] for r in results}),
           turns=sorted({r["turns"] for r in results}))


def injector(client):
    with client.create_session(role="injector", project="moneyunits", seed=7) as session:
        session.step("bash", command=BUG)
        submitted = session.step("submit")
    artifact = submitted.artifact
    assert artifact and artifact.get("valid"), submitted
    solvers = [client.create_session(artifact_id=artifact["id"], seed=seed) for seed in range(2)]
    solvers[0].step("bash", command=FIX)
    rewards = [solver.step("submit").reward for solver in solvers]
    for solver in solvers:
        solver.close()
    status = client.artifact(artifact["id"], wait=30)
    report("injector", artifact=artifact["id"], injector=session.id,
           solver_nodes=[node_of(s) for s in solvers], rewards=rewards,
           complete=status.complete, solve_rate=status.solve_rate,
           injector_reward=status.injector_reward)
    return [s.id for s in solvers]


def restart(cluster, client, name):
    before = cluster.info()[name]
    os.kill(before["pid"], signal.SIGKILL)

    def registered_again():
        nodes = client.request("GET", "/v1/nodes")["nodes"]
        return any(n["name"] == name and n["alive"] and n["url"] != before["url"] for n in nodes)

    wait_until("the restarted server registered", registered_again)
    after = cluster.info()[name]
    sessions = one_on_each(client, [name], 20)
    report("restart", pid_changed=after["pid"] != before["pid"], restarts=after["restarts"],
           served=node_of(sessions[0]))
    for session in sessions:
        session.close()


def one_on_each(client, names, first_seed):
    """Sessions placed by load until one is on each named node (the others are closed)."""
    found = {}
    for seed in range(first_seed, first_seed + 12):
        session = client.create_session(seed=seed)
        if node_of(session) in names and node_of(session) not in found:
            found[node_of(session)] = session
        else:
            session.close()
        if len(found) == len(names):
            return [found[name] for name in names]
    raise AssertionError(f"12 new sessions never reached all of {names}")


def router_restart(cluster, client):
    """The router's process dies; its actor restarts it on the same port with the nodes it
    knew, and a session opened before goes on."""
    session = client.create_session(seed=50)
    before = cluster.router_info()
    os.kill(before["pid"], signal.SIGKILL)
    # A step sent while the router dies may have reached it: clients rightly do not resend
    # it. One sent after finds the connection refused until the restart, and is retried.
    wait_until("the router died", lambda: cluster.router_info()["restarts"] == 1)
    step = session.step("bash", command="ls")
    after = cluster.router_info()
    session.close()
    report("router_restart", restarts=after["restarts"], same_url=after["url"] == before["url"],
           stepped="moneyunits" in step.observation)


def failure(cluster, client, victim):
    doomed, survivor = one_on_each(client, [victim, "n1" if victim == "n0" else "n0"], 30)
    doomed.step("bash", command="ls")
    survivor.step("bash", command="ls")
    cluster.kill_node(victim)
    try:
        doomed.step("bash", command="ls")
        lost = None
    except SparError as e:
        lost = [e.status, e.message]
    survivor.step("bash", command="grep -rn 'def convert' moneyunits")
    end = survivor.step("submit")
    fresh = [client.create_session(seed=seed) for seed in range(40, 44)]
    report("failure", lost=lost, survivor_done=end.done,
           fresh_nodes=sorted({node_of(s) for s in fresh}))
    for session in fresh:
        session.close()
    return [survivor.id]


ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
try:
    ray_cluster.add_node(num_cpus=1)
    ray.init(address=ray_cluster.address, logging_level="ERROR", log_to_driver=False)
    ray_cluster.wait_for_nodes()
    with SparCluster(binary=binary, tasks=tasks, workers=1, out=out,
                     serve_args=["--attempts", "2"]) as cluster:
        client = cluster.client()
        finished = placement(cluster, client)
        async_rollouts(cluster)
        finished += injector(client)
        restart(cluster, client, "n1")
        router_restart(cluster, client)
        finished += failure(cluster, client, "n0")
        logged = {episode["episode"] for episode in cluster.episodes()}
        report("log", finished=len(finished), missing=sorted(set(finished) - logged),
               logged=len(logged))
        client.close()
finally:
    ray.shutdown()
    ray_cluster.shutdown()
