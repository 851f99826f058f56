//! `spar_client.ray` on a real local Ray cluster of two nodes (`ray.cluster_utils.Cluster`,
//! Ray from PyPI in the client tests' virtual environment), with this build's `spar serve` on
//! each node and `spar route` in front: sessions spread over both nodes, an injector's solver
//! sessions follow its artifact to its node and its reward is reported as on one machine, a
//! killed server is restarted and re-registered, a killed router is restarted on its port
//! with its nodes, a killed node's sessions fail with a clear
//! error while the other node's go on, and no finished episode is missing from the router's log.

mod common;

use common::scratch;
use common::venv::{check, checks, clients_python, run_bounded};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SPAR: &str = env!("CARGO_BIN_EXE_spar");

/// Two procedural moneyunits bugs as `spar export` lines: the portable form tasks travel in.
fn tasks(dir: &Path) -> std::path::PathBuf {
    let artifacts = dir.join("artifacts");
    let inject = Command::new(SPAR)
        .args([
            "-q",
            "inject",
            "--corpus",
            "moneyunits",
            "--strategy",
            "procedural",
        ])
        .args(["--count", "2", "--out"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert!(inject.status.success(), "{inject:?}");
    let export = Command::new(SPAR)
        .args(["-q", "export", "--artifacts"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    let path = dir.join("tasks.jsonl");
    std::fs::write(&path, &export.stdout).unwrap();
    path
}

#[test]
fn a_two_node_ray_cluster_serves_one_client_and_survives_a_dead_node() {
    let python = clients_python();
    let dir = scratch("ray-cluster");
    let tasks = tasks(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/clients/ray_cluster_play.py");
    let example = root.join("clients/python/examples/ray_rollouts.py");
    let output = run_bounded(
        Command::new(python)
            .arg(script)
            .arg(SPAR)
            .arg(&tasks)
            .arg(dir.join("cluster"))
            .arg(example),
        Duration::from_secs(600),
        "the Ray cluster script",
    );
    let checks = checks(&output);

    let placement = check(&checks, "placement");
    assert_eq!(placement["ray_nodes"], 2, "{placement}");
    assert_eq!(placement["nodes"], json!(["n0", "n1"]), "{placement}");

    let rollouts = check(&checks, "async");
    assert_eq!(rollouts["episodes"], 8, "{rollouts}");
    assert_eq!(rollouts["nodes"], json!(["n0", "n1"]), "{rollouts}");
    assert_eq!(rollouts["turns"], json!([2]), "{rollouts}");

    let injector = check(&checks, "injector");
    let owner = injector["artifact"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    assert_eq!(
        injector["solver_nodes"],
        json!([owner, owner]),
        "{injector}"
    );
    assert_eq!(injector["rewards"], json!([1.0, -1.0]), "{injector}");
    assert_eq!(injector["complete"], true, "{injector}");
    assert_eq!(injector["solve_rate"], 0.5, "{injector}");
    assert!(
        injector["injector_reward"].as_f64().unwrap() > 0.0,
        "{injector}"
    );

    let restart = check(&checks, "restart");
    assert_eq!(restart["pid_changed"], true, "{restart}");
    assert_eq!(restart["restarts"], 1, "{restart}");
    assert_eq!(restart["served"], "n1", "{restart}");

    let router = check(&checks, "router_restart");
    assert_eq!(router["restarts"], 1, "{router}");
    assert_eq!(router["same_url"], true, "{router}");
    assert_eq!(router["stepped"], true, "{router}");

    let failure = check(&checks, "failure");
    assert_eq!(failure["lost"][0], 410, "{failure}");
    assert!(
        failure["lost"][1]
            .as_str()
            .unwrap()
            .contains("node n0 is down"),
        "{failure}"
    );
    assert_eq!(failure["survivor_done"], true, "{failure}");
    assert_eq!(failure["fresh_nodes"], json!(["n1"]), "{failure}");

    let log = check(&checks, "log");
    assert_eq!(log["missing"], json!([]), "{log}");
    assert!(log["finished"].as_u64().unwrap() >= 7, "{log}");
}
