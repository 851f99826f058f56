//! spar's Python client package, installed with `pip install ./clients/python` into the client
//! tests' virtual environment (`common::venv`), against a live `spar serve`: the sync client
//! with the swe-agent tools, the asyncio client with R2E-Gym's, the SkyRL-gym adapter on the
//! real `skyrl_gym` base class, the TRL and verl adapters against faithful copies of their
//! interfaces (tests/clients/interfaces: neither framework installs without torch), and the
//! asyncio batch example with hundreds of sessions in flight.

mod common;

use common::scratch;
use common::server::{artifact_dir, start, TOKEN};
use common::venv::{check, checks, clients_python, run_bounded};
use serde_json::json;
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::pool::TaskPool;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const FIX: (&str, &str) = ("return a + b\n\n\ndef mul", "return a - b\n\n\ndef mul");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_package_and_its_adapters_play_episodes() {
    let python = tokio::task::spawn_blocking(clients_python).await.unwrap();
    let dir = scratch("python-clients");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let pool = TaskPool::load(&artifact).unwrap();
    let running = start(&dir, validator, |s| s.pool = pool).await;
    let url = format!("http://{}", running.addr);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/clients/spar_client_play.py");
    let interfaces = root.join("tests/clients/interfaces");
    let verl_config = root.join("clients/python/examples/verl_tool_config.yaml");
    let artifact_arg = artifact.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new(python)
                .arg(script)
                .args([&url, TOKEN])
                .arg(artifact_arg)
                .args([FIX.0, FIX.1])
                .arg(verl_config)
                .env("PYTHONPATH", interfaces),
            Duration::from_secs(300),
            "the client package",
        )
    })
    .await
    .unwrap();
    let checks = checks(&output);

    let sync = check(&checks, "sync");
    assert_eq!(
        sync["tools"],
        json!(["bash", "str_replace_editor", "submit"])
    );
    assert!(
        sync["grep"].as_str().unwrap().starts_with("calc/ops.py:"),
        "{sync}"
    );
    assert_eq!(
        (sync["edited"].as_bool(), sync["reward"].as_f64()),
        (Some(true), Some(1.0)),
        "{sync}"
    );
    assert_eq!(sync["turn"], 3);
    assert_eq!(sync["refused"][0], 404, "{sync}");

    let r2e = check(&checks, "async");
    assert!(
        r2e["search"]
            .as_str()
            .unwrap()
            .starts_with("Execution output of [search]:\nFound 1 matches"),
        "{r2e}"
    );
    assert_eq!(
        (r2e["reward"].as_f64(), r2e["terminated"].as_bool()),
        (Some(-1.0), Some(true))
    );

    let skyrl = check(&checks, "skyrl");
    assert_eq!(skyrl["base"], true);
    assert_eq!(skyrl["prompt_roles"], json!(["system", "user"]));
    assert_eq!(skyrl["tools"], 3);
    assert!(
        skyrl["first"].as_str().unwrap().starts_with("2:"),
        "{skyrl}"
    );
    assert!(
        skyrl["no_call"]
            .as_str()
            .unwrap()
            .starts_with("No tool call found"),
        "{skyrl}"
    );
    assert_eq!(skyrl["python"], "8\n", "the unrepaired sub adds: {skyrl}");
    assert_eq!(skyrl["rewards"], json!([0.0, 0.0, 0.0, 0.0, 1.0]));
    assert_eq!(skyrl["done"], json!([false, false, false, false, true]));
    assert_eq!(skyrl["metrics"]["solved"], 1.0);

    let trl = check(&checks, "trl");
    assert_eq!(
        trl["tools"],
        json!(["bash", "str_replace_editor", "submit"])
    );
    assert_eq!(trl["required"], json!(["command", "path"]));
    assert_eq!(
        (trl["spec"].as_bool(), trl["grep"].as_str()),
        (Some(true), Some("2\n")),
        "{trl}"
    );
    assert_eq!(trl["reward"], 1.0, "{trl}");
    assert_eq!(trl["after"], "{'error': 'The episode has ended.'}");
    assert_eq!(trl["fresh"], 0.0);

    let verl = check(&checks, "verl");
    assert_eq!(
        verl["tools"],
        json!(["bash", "str_replace_editor", "submit"])
    );
    assert_eq!(
        (verl["pwd"].as_str(), verl["same"].as_str()),
        (Some("/repo/calc\n"), Some("/repo/calc\n")),
        "one session per trajectory: {verl}"
    );
    assert_eq!(
        (
            verl["reward"].as_f64(),
            verl["extra"]["spar_reward"].as_f64()
        ),
        (Some(1.0), Some(1.0)),
        "{verl}"
    );
    assert_eq!(verl["turn"], 4);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The asyncio batch example: hundreds of sessions in flight on one event loop and one
/// connection pool, every one repaired and graded (identical final states grade once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_batch_example_keeps_hundreds_of_sessions_in_flight() {
    let python = tokio::task::spawn_blocking(clients_python).await.unwrap();
    let dir = scratch("batch");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let running = start(&dir, validator, |_| {}).await;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/examples/batch.py");
    let gold = json!({"calc/ops.py": [FIX.0, FIX.1]}).to_string();
    let addr = running.addr;
    let output = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new(python)
                .arg(example)
                .args([
                    "--episodes",
                    "256",
                    "--concurrency",
                    "256",
                    "--gold",
                    &gold,
                    "--artifact",
                ])
                .arg(&artifact)
                .env("SPAR_URL", format!("http://{addr}"))
                .env("SPAR_TOKEN", TOKEN),
            Duration::from_secs(300),
            "examples/batch.py",
        )
    })
    .await
    .unwrap();
    let lines = checks(&output);
    assert_eq!(lines.len(), 257, "{output}");
    assert!(lines[..256]
        .iter()
        .all(|l| l["reward"] == 1.0 && l["terminated"] == true));
    assert_eq!(lines[256]["mean_reward"], 1.0);
    assert_eq!(running.server.finished_episodes(), 256);
    assert_eq!(running.server.open_sessions(), 0);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
