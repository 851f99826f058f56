//! `spar serve` over real HTTP on loopback, against the real guest: solver and injector
//! sessions, OpenAI-style tool calls, the injector reward from solver sessions, OpenEnv routes,
//! limits and error answers, a thousand concurrent sessions, idle expiry, graceful shutdown,
//! the OpenAPI document against the routes, and the Python client.

mod common;

use serde_json::{json, Value};
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::client::{Answer, Client};
use spar::serve::{serve, ServeSettings, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "test-token";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The calc artifact (`sub` broken), validated and written to `dir`.
fn artifact_dir(validator: &Validator, dir: &Path) -> PathBuf {
    let (artifact, report, _) = common::calc_task(validator);
    let out = dir.join(artifact.id());
    spar::inject::write_artifact(&artifact, &report, &out).unwrap();
    out
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), spar::serve::ServeError>>,
    server: Arc<Server>,
}

impl Running {
    async fn client(&self) -> Client {
        Client::connect(self.addr, TOKEN).await.unwrap()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

async fn start(
    dir: &Path,
    validator: Arc<Validator>,
    tune: impl FnOnce(&mut ServeSettings),
) -> Running {
    let (log, artifacts_dir) = spar::serve::default_paths(dir);
    let mut settings = ServeSettings {
        token: TOKEN.into(),
        max_sessions: 2000,
        max_body_bytes: 64 << 10,
        idle_timeout: Duration::from_secs(600),
        env: spar::episode::EnvSettings::default(),
        attempts: 2,
        alpha: 0.8,
        workers: 2,
        log,
        artifacts_dir,
    };
    tune(&mut settings);
    let server = Server::new(
        common::python_arc(),
        validator,
        settings,
        Box::new(|name| {
            if name == "calc" {
                Ok(common::calc_project(spar::corpus::Split::Train))
            } else {
                Err("no such project".into())
            }
        }),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(server.clone(), listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
        server,
    }
}

fn error_of(answer: &Answer) -> &str {
    answer.body["error"].as_str().unwrap_or_default()
}

const FIXED_SUB: (&str, &str) = ("return a + b\n\n\ndef mul", "return a - b\n\n\ndef mul");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solver_sessions_over_http_with_clear_errors() {
    let dir = scratch("solver");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let running = start(&dir, validator, |s| s.max_sessions = 3).await;
    let mut c = running.client().await;

    // No token, wrong token: 401, and public routes stay public.
    let mut anonymous = Client::connect(running.addr, "wrong").await.unwrap();
    let a = anonymous
        .request("POST", "/v1/sessions", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(a.status, 401);
    assert!(error_of(&a).contains("Bearer"), "{}", a.body);
    // A refused request's unread body may end its connection: ask on a fresh one.
    let mut anonymous = Client::connect(running.addr, "wrong").await.unwrap();
    let health = anonymous.request("GET", "/v1/health", None).await.unwrap();
    assert_eq!(health.status, 200);

    // Every documented route exists: none answers with the no-route fallback.
    let doc: Value = serde_json::from_str(spar::serve::OPENAPI).unwrap();
    for (method, path) in spar::serve::ROUTES {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path}"
        );
        let concrete = path.replace("{id}", "nope");
        let a = c.request(method, &concrete, None).await.unwrap();
        assert!(
            !error_of(&a).starts_with("no route") && a.status != 405,
            "{method} {path}: {} {}",
            a.status,
            a.body
        );
    }
    let a = c.request("GET", "/v1/nothing", None).await.unwrap();
    assert_eq!(a.status, 404);
    assert!(error_of(&a).contains("openapi"), "{}", a.body);

    // Bad creations say what to send.
    for (body, wanted) in [
        (json!({"role": "solver"}), "exactly one bug"),
        (json!({"role": "injector"}), "project"),
        (json!({"role": "judge"}), "unknown variant"),
        (
            json!({"role": "solver", "artifact": "/nowhere"}),
            "/nowhere",
        ),
        (
            json!({"role": "solver", "artifact_id": "x"}),
            "unknown artifact",
        ),
        (
            json!({"role": "injector", "project": "elsewhere"}),
            "no such project",
        ),
        (json!({"role": "solver", "instance": "{"}), "not JSON"),
    ] {
        let a = c
            .request("POST", "/v1/sessions", Some(&body))
            .await
            .unwrap();
        assert!((400..500).contains(&a.status), "{body}: {}", a.status);
        assert!(error_of(&a).contains(wanted), "{body}: {}", a.body);
    }

    // A solver session: the specification and the tools as OpenAI definitions.
    let create = json!({"role": "solver", "artifact": artifact, "seed": 3});
    let a = c
        .request("POST", "/v1/sessions", Some(&create))
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["session_id"].as_str().unwrap().to_owned();
    assert!(a.body["observation"]["text"]
        .as_str()
        .unwrap()
        .contains("```diff"));
    let tools = a.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), spar::episode::tools::TOOL_NAMES.len());
    assert_eq!(tools[1]["function"]["name"], "read_file");
    let step = format!("/v1/sessions/{id}/step");

    // Tool calls in spar's form and in OpenAI's.
    let a = c
        .request(
            "POST",
            &step,
            Some(&json!({"tool": "read_file", "path": "calc/ops.py"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["observation"]["text"]
        .as_str()
        .unwrap()
        .contains("def sub"));
    assert_eq!(a.body["reward"], 0.0);
    assert_eq!(a.body["terminated"], false);
    assert_eq!(a.body["truncated"], false);
    let openai = json!({"type": "function", "function": {"name": "edit", "arguments":
        serde_json::to_string(&json!({"path": "calc/ops.py", "old": FIXED_SUB.0, "new": FIXED_SUB.1})).unwrap()}});
    let a = c.request("POST", &step, Some(&openai)).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["observation"]["error"], false, "{}", a.body);

    // Bad steps: 4xx with the reason; the session goes on.
    for (body, status, wanted) in [
        (json!({"tool": "rm", "path": "x"}), 400, "unknown tool"),
        (
            json!({"tool": "edit", "path": "x"}),
            400,
            "bad arguments for edit",
        ),
        (
            json!({"name": "run", "arguments": "{not json"}),
            400,
            "not valid JSON",
        ),
        (json!([1, 2]), 400, "a tool call is"),
    ] {
        let a = c.request("POST", &step, Some(&body)).await.unwrap();
        assert_eq!(a.status, status, "{body}: {}", a.body);
        assert!(error_of(&a).contains(wanted), "{body}: {}", a.body);
    }
    let a = raw(running.addr, &format!("POST {step} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 5\r\n\r\n{{oops")).await;
    assert!(a.starts_with("HTTP/1.1 400"), "{a}");
    assert!(a.contains("malformed request JSON"), "{a}");
    let huge = json!({"tool": "create", "path": "big.txt", "content": "x".repeat(100 << 10)});
    let a = c.request("POST", &step, Some(&huge)).await.unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(error_of(&a).contains("--max-body-bytes"), "{}", a.body);
    let a = c
        .request(
            "POST",
            "/v1/sessions/nope/step",
            Some(&json!({"tool": "diff"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 404);
    assert!(error_of(&a).contains("unknown session"), "{}", a.body);

    // Submit: solved, terminated, logged; the session then refuses steps.
    let a = c
        .request("POST", &step, Some(&json!({"tool": "submit"})))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["reward"], 1.0, "{}", a.body);
    assert_eq!(a.body["terminated"], true);
    assert_eq!(a.body["info"]["grade"]["solved"], true);
    let a = c
        .request("POST", &step, Some(&json!({"tool": "diff"})))
        .await
        .unwrap();
    assert_eq!(a.status, 409);
    let state = c
        .request("GET", &format!("/v1/sessions/{id}"), None)
        .await
        .unwrap();
    assert_eq!(state.body["done"], true);
    assert_eq!(state.body["turn"], 3, "{}", state.body);
    let log = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    let record: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(record["episode"], id);
    assert_eq!(record["solved"], true);
    assert_eq!(record["role"], "solver");

    // A `spar export` line is a bug too: the same task, fixed the same way.
    let artifact_loaded = spar::protocol::BugArtifact::load(&artifact).unwrap();
    let report: spar::protocol::ValidationReport =
        serde_json::from_str(&std::fs::read_to_string(artifact.join("validation.json")).unwrap())
            .unwrap();
    let line = serde_json::to_string(&spar::protocol::export::swebench_instance(
        &artifact_loaded,
        &report,
    ))
    .unwrap();
    let a = c
        .request(
            "POST",
            "/v1/sessions",
            Some(&json!({"role": "solver", "instance": line})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["task"], json!(artifact_loaded.id()));
    let iid = a.body["session_id"].as_str().unwrap().to_owned();
    let istep = format!("/v1/sessions/{iid}/step");
    let fix =
        json!({"tool": "edit", "path": "calc/ops.py", "old": FIXED_SUB.0, "new": FIXED_SUB.1});
    assert_eq!(
        c.request("POST", &istep, Some(&fix)).await.unwrap().status,
        200
    );
    let a = c
        .request("POST", &istep, Some(&json!({"tool": "submit"})))
        .await
        .unwrap();
    assert_eq!(a.body["reward"], 1.0, "{}", a.body);
    c.request("DELETE", &format!("/v1/sessions/{iid}"), None)
        .await
        .unwrap();
    let mut other = serde_json::from_str::<Value>(&line).unwrap();
    other["base_snapshot"] = json!("0000");
    let a = c
        .request(
            "POST",
            "/v1/sessions",
            Some(&json!({"role": "solver", "instance": other})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert!(error_of(&a).contains("another snapshot"), "{}", a.body);

    // OpenEnv's shape: reset, step, state.
    let a = c.request("POST", "/reset", Some(&create)).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let oid = a.body["session_id"].as_str().unwrap().to_owned();
    let a = c
        .request(
            "POST",
            "/step",
            Some(&json!({"session_id": oid, "action": {"tool": "submit"}})),
        )
        .await
        .unwrap();
    assert_eq!(a.body["done"], true, "{}", a.body);
    assert_eq!(a.body["reward"], -1.0, "unfixed");
    let a = c
        .request("GET", &format!("/state?session_id={oid}"), None)
        .await
        .unwrap();
    assert_eq!(a.body["terminated"], true, "{}", a.body);

    // The session limit: the third open session is the last.
    let a = c
        .request("POST", "/v1/sessions", Some(&create))
        .await
        .unwrap();
    assert_eq!(a.status, 201);
    let a = c
        .request("POST", "/v1/sessions", Some(&create))
        .await
        .unwrap();
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(error_of(&a).contains("--max-sessions"), "{}", a.body);
    let a = c
        .request("DELETE", &format!("/v1/sessions/{id}"), None)
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let a = c
        .request("POST", "/v1/sessions", Some(&create))
        .await
        .unwrap();
    assert_eq!(a.status, 201);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Sends raw bytes and returns the raw answer (for bodies the JSON client cannot send).
async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injector_reward_follows_the_solver_sessions_on_its_artifact() {
    let dir = scratch("injector");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let running = start(&dir, validator, |_| {}).await;
    let mut c = running.client().await;
    let a = c
        .request(
            "POST",
            "/v1/sessions",
            Some(&json!({"role": "injector", "project": "calc"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["observation"]["text"]
        .as_str()
        .unwrap()
        .contains("realistic bug"));
    let step = format!(
        "/v1/sessions/{}/step",
        a.body["session_id"].as_str().unwrap()
    );
    let bug = json!({"tool": "edit", "path": "calc/ops.py", "old": "return a - b", "new": "return a + b"});
    assert_eq!(
        c.request("POST", &step, Some(&bug)).await.unwrap().status,
        200
    );
    let a = c
        .request("POST", &step, Some(&json!({"tool": "submit"})))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["artifact"]["valid"], true, "{}", a.body);
    let artifact_id = a.body["artifact"]["id"].as_str().unwrap().to_owned();
    assert!(a.body["artifact"]["fail_to_pass"]
        .as_array()
        .unwrap()
        .contains(&json!("tests/test_calc.py::test_sub")));
    let status_path = format!("/v1/artifacts/{artifact_id}");
    let status = c.request("GET", &status_path, None).await.unwrap();
    assert_eq!(status.body["complete"], false);
    assert_eq!(status.body["injector_reward"], Value::Null);

    // A long poll waits for the two attempts; one solves, one does not: s = 0.5.
    let poll = {
        let mut poller = running.client().await;
        let path = format!("{status_path}?wait=30");
        tokio::spawn(async move { poller.request("GET", &path, None).await.unwrap() })
    };
    for fix in [true, false] {
        let a = c
            .request(
                "POST",
                "/v1/sessions",
                Some(&json!({"role": "solver", "artifact_id": artifact_id})),
            )
            .await
            .unwrap();
        assert_eq!(a.status, 201, "{}", a.body);
        let step = format!(
            "/v1/sessions/{}/step",
            a.body["session_id"].as_str().unwrap()
        );
        if fix {
            let edit = json!({"tool": "edit", "path": "calc/ops.py", "old": FIXED_SUB.0, "new": FIXED_SUB.1});
            c.request("POST", &step, Some(&edit)).await.unwrap();
        }
        let a = c
            .request("POST", &step, Some(&json!({"tool": "submit"})))
            .await
            .unwrap();
        assert_eq!(a.body["reward"], if fix { 1.0 } else { -1.0 }, "{}", a.body);
    }
    let done = poll.await.unwrap();
    assert_eq!(done.body["complete"], true, "{}", done.body);
    assert_eq!(done.body["solve_rate"], 0.5);
    let reward = done.body["injector_reward"].as_f64().unwrap();
    assert!((reward - (1.0 - 1.8 * 0.5)).abs() < 1e-9, "{reward}");
    assert!(dir
        .join("artifacts")
        .join(&artifact_id)
        .join("bug_patch.diff")
        .is_file());
    let a = c
        .request("GET", &format!("{status_path}?wait=nope"), None)
        .await
        .unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_sessions_idle_expiry_and_graceful_shutdown() {
    let dir = scratch("many");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let running = start(&dir, validator, |s| s.idle_timeout = Duration::from_secs(3)).await;
    // A thousand sessions open at once, driven over a hundred keep-alive connections (as a
    // pool of rollout workers would), every session stepped while all are open.
    let create = json!({"role": "injector", "project": "calc"});
    let mut tasks = Vec::new();
    for worker in 0..100 {
        let addr = running.addr;
        let create = create.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, TOKEN).await.unwrap();
            let mut ids = Vec::new();
            for _ in 0..10 {
                let a = c
                    .request("POST", "/v1/sessions", Some(&create))
                    .await
                    .unwrap();
                assert_eq!(a.status, 201, "{}", a.body);
                ids.push(a.body["session_id"].as_str().unwrap().to_owned());
            }
            (c, ids, worker)
        }));
    }
    let mut opened = Vec::new();
    for t in tasks {
        opened.push(t.await.unwrap());
    }
    assert_eq!(running.server.open_sessions(), 1000);
    let mut tasks = Vec::new();
    for (mut c, ids, worker) in opened {
        tasks.push(tokio::spawn(async move {
            for (i, id) in ids.iter().enumerate() {
                let start = 1 + (worker + i) % 3;
                let read = json!({"name": "read_file", "arguments": {"path": "calc/ops.py", "start": start}});
                let a = c
                    .request("POST", &format!("/v1/sessions/{id}/step"), Some(&read))
                    .await
                    .unwrap();
                assert_eq!(a.status, 200, "{}", a.body);
                assert!(a.body["observation"]["text"].as_str().unwrap().contains(&format!("{start}")));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    assert_eq!(running.server.open_sessions(), 1000);

    // Idle sessions expire.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(running.server.open_sessions(), 0);
    let mut c = running.client().await;
    let a = c
        .request("GET", &format!("/v1/sessions/{}", ids[0]), None)
        .await
        .unwrap();
    assert_eq!(a.status, 404);
    assert!(error_of(&a).contains("expired"), "{}", a.body);

    // Shutting down while a submission is graded: the answer arrives and the episode is logged.
    let a = c
        .request(
            "POST",
            "/v1/sessions",
            Some(&json!({"role": "solver", "artifact": artifact})),
        )
        .await
        .unwrap();
    let step = format!(
        "/v1/sessions/{}/step",
        a.body["session_id"].as_str().unwrap()
    );
    let in_flight = tokio::spawn(async move {
        c.request("POST", &step, Some(&json!({"tool": "submit"})))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let server = running.server.clone();
    running.stop().await;
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(server.finished_episodes(), 1);
    let log = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_runs_a_batch_of_solver_episodes() {
    let dir = scratch("python");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let artifact = artifact_dir(&validator, &dir);
    let running = start(&dir, validator, |_| {}).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gold = json!({"calc/ops.py": [FIXED_SUB.0, FIXED_SUB.1]}).to_string();
    let addr = running.addr;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(root.join("clients/python/example_batch.py"))
            .args(["--episodes", "4", "--gold", &gold, "--artifact"])
            .arg(&artifact)
            .env("SPAR_URL", format!("http://{addr}"))
            .env("SPAR_TOKEN", TOKEN)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[..4]
        .iter()
        .all(|l| l["reward"] == 1.0 && l["terminated"] == true));
    assert_eq!(lines[4]["mean_reward"], 1.0);
    assert_eq!(running.server.finished_episodes(), 4);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
