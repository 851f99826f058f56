//! OpenEnv's own clients against `spar serve`: `openenv-core` 0.3.0 from PyPI, unmodified, in
//! a virtual environment this test makes (once per target directory): the sync and async
//! `GenericEnvClient` play reset -> steps -> close over `/ws` with a seed-only reset drawn from
//! the task pool, `MCPToolClient` lists and calls tools, and a client without the token is
//! refused. The HTTP shapes are checked in tests/serve.rs.

mod common;

use common::server::{artifact_dir, scratch, start};
use serde_json::Value;
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::pool::TaskPool;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPENENV_CORE: &str = "openenv-core==0.3.0";

/// Runs `command` to its end or `limit`, whichever comes first; panics with its output if it
/// fails.
fn run_bounded(command: &mut Command, limit: Duration, what: &str) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("{what}: still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The virtual environment with openenv-core, made on first use.
fn openenv_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-openenv-core-0.3.0");
    let python = venv.join("bin").join("python");
    if venv.join(".ready").exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let host = std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "openenv test: installing {OPENENV_CORE} from PyPI into {} (once; about a minute)",
        venv.display()
    );
    run_bounded(
        Command::new(&host).args(["-m", "venv"]).arg(&venv),
        Duration::from_secs(120),
        "creating the virtual environment",
    );
    run_bounded(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            OPENENV_CORE,
        ]),
        Duration::from_secs(600),
        "pip install openenv-core",
    );
    std::fs::write(venv.join(".ready"), OPENENV_CORE).unwrap();
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openenv_core_clients_play_spar_episodes() {
    let python = tokio::task::spawn_blocking(openenv_python).await.unwrap();
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
    let checks: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let check = |name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {output}"))
            .clone()
    };
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
