//! OpenEnv's own clients against `spar serve`: `openenv-core` 0.3.0 from PyPI, unmodified, in
//! the client tests' virtual environment (`common::venv`): the sync and async
//! `GenericEnvClient` play reset -> steps -> close over `/ws` with a seed-only reset drawn from
//! the task pool, `MCPToolClient` lists and calls tools, and a client without the token is
//! refused. The HTTP shapes are checked in tests/serve.rs.

mod common;

use common::scratch;
use common::server::{artifact_dir, start};
use common::venv::{check, checks, clients_python, run_bounded};
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::pool::TaskPool;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openenv_core_clients_play_spar_episodes() {
    let python = tokio::task::spawn_blocking(clients_python).await.unwrap();
    let dir = scratch("openenv");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let pool = TaskPool::load(&artifact).unwrap();
    let running = start(&dir, validator, |s| s.pool = pool).await;
    let (with_token, bare) = (
        format!("http://{}/t/{}", running.addr, common::server::TOKEN),
        format!("http://{}", running.addr),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openenv_play.py");
    let output = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new(python)
                .arg(script)
                .args([&with_token, &bare])
                .args(["return a + b\n\n\ndef mul", "return a - b\n\n\ndef mul"]),
            Duration::from_secs(300),
            "the openenv-core clients",
        )
    })
    .await
    .unwrap();
    let checks = checks(&output);
    let check = |name: &str| check(&checks, name);
    let sync = check("sync");
    assert_eq!(
        (sync["reward"].as_f64(), sync["done"].as_bool()),
        (Some(1.0), Some(true)),
        "{sync}"
    );
    assert_eq!(sync["steps"], 3, "{sync}");
    let unfixed = check("async");
    assert_eq!(unfixed["reward"], -1.0, "{unfixed}");
    assert!(
        unfixed["tests"].as_str().unwrap().contains("passed"),
        "{unfixed}"
    );
    let mcp = check("mcp");
    assert_eq!(
        mcp["tools"],
        serde_json::json!(["bash", "str_replace_editor", "submit"])
    );
    assert_eq!(mcp["pwd"], "/repo/calc\n");
    assert!(
        mcp["refused"].as_str().unwrap().contains("invalid_args"),
        "{mcp}"
    );
    assert_eq!(check("no-token")["connected"], false);
    // Every episode closed by its client was logged once it ended, and no session stays open.
    assert_eq!(running.server.finished_episodes(), 2);
    assert_eq!(running.server.open_sessions(), 0);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
