//! `spar serve` over real HTTP on loopback, against the real guest: solver and injector
//! sessions, OpenAI-style tool calls, the injector reward from solver sessions, OpenEnv routes,
//! limits and error answers, a thousand concurrent sessions, idle expiry, graceful shutdown,
//! the OpenAPI document against the routes. The Python clients are in tests/python_clients.rs.

mod common;

use common::scratch;
use common::server::{artifact_dir, start, TOKEN};
use serde_json::{json, Value};
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::client::{Answer, Client};
use spar::serve::ConnectionSettings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
            "no bug artifact",
        ),
        (
            json!({"role": "solver", "artifact_id": "x"}),
            "unknown artifact",
        ),
        (
            json!({"role": "injector", "project": "elsewhere"}),
            "unknown project",
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
    assert_eq!(
        tools.len(),
        spar::episode::tools::Profile::Spar.names().len()
    );
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

    // OpenEnv's shapes: reset (spar's fields, plus OpenEnv's and unknown ones, ignored), step
    // with OpenEnv's fields, state.
    let mut reset = create.clone();
    reset["episode_id"] = json!("e1");
    reset["unknown_field"] = json!(1);
    let a = c.request("POST", "/reset", Some(&reset)).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.body["reward"].clone(), a.body["done"].clone()),
        (Value::Null, json!(false))
    );
    let oid = a.body["observation"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(a.body["observation"]["text"]
        .as_str()
        .unwrap()
        .contains("```diff"));
    let a = c
        .request(
            "POST",
            "/step",
            Some(&json!({"session_id": oid, "action": {"tool": "submit"}, "timeout_s": 5, "request_id": "r1"})),
        )
        .await
        .unwrap();
    assert_eq!(a.body["done"], true, "{}", a.body);
    assert_eq!(a.body["reward"], -1.0, "unfixed");
    assert_eq!(a.body["request_id"], "r1");
    let a = c
        .request("POST", "/step", Some(&json!({"action": {"tool": "diff"}})))
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert!(
        error_of(&a).contains("session_id that POST /reset returned"),
        "{}",
        a.body
    );
    let a = c
        .request("GET", &format!("/state?session_id={oid}"), None)
        .await
        .unwrap();
    assert_eq!(a.body["terminated"], true, "{}", a.body);
    assert_eq!(
        (a.body["episode_id"].as_str(), a.body["step_count"].as_u64()),
        (Some(oid.as_str()), Some(1))
    );
    // A seed-only reset needs a task pool, and says how to give one.
    let a = c
        .request("POST", "/reset", Some(&json!({"seed": 3})))
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert!(error_of(&a).contains("--tasks"), "{}", a.body);

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

/// How long `GET /v1/health` takes on a fresh connection (it must answer 200).
async fn health_latency(addr: SocketAddr) -> Duration {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        let mut c = Client::connect(addr, "").await.unwrap();
        c.request("GET", "/v1/health", None).await.unwrap()
    })
    .await
    .expect("health answers within 20 s");
    assert_eq!(answer.status, 200, "{}", answer.body);
    started.elapsed()
}

/// Whether the server closed `stream` (end of file or reset) within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An error answer (such as a 408) before the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_neither_starve_health_checks_nor_hold_up_shutdown() {
    let dir = scratch("slow");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    // Fewer connections allowed than stalled clients, and a read deadline longer than the
    // test: only making room by closing the idlest connection can let health checks in.
    let running = start(&dir, validator, |s| {
        s.connections = ConnectionSettings {
            max_connections: 64,
            read_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(2),
        }
    })
    .await;
    let addr = running.addr;
    let mut stalled = Vec::new();
    for _ in 0..300 {
        stalled.push(common::half_open(addr).await);
    }
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(health_latency(addr).await);
    }
    eprintln!("health with 300 half-open connections (64 allowed): worst of 5 {worst:?}");
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    // The oldest stalled clients were closed to make room.
    let mut closed = 0;
    for stream in stalled.iter_mut().take(20) {
        closed += usize::from(closed_within(stream, Duration::from_millis(200)).await);
    }
    assert!(closed > 0, "no stalled connection was closed");

    // Stopping with stalled and idle keep-alive connections open returns at once.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut c = running.client().await;
        assert_eq!(
            c.request("GET", "/v1/health", None).await.unwrap().status,
            200
        );
        idle.push(c);
    }
    for _ in 0..20 {
        stalled.push(common::half_open(addr).await);
    }
    let started = std::time::Instant::now();
    running.stop().await;
    let took = started.elapsed();
    eprintln!("shutdown with idle and stalled connections open: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_have_a_read_deadline() {
    let dir = scratch("deadline");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let running = start(&dir, validator, |s| {
        s.connections.read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = running.addr;
    // Half a header: the connection is closed once the deadline passes.
    let mut stalled = common::half_open(addr).await;
    assert!(closed_within(&mut stalled, Duration::from_secs(10)).await);
    // A whole header but only part of the body: 408, saying which flag sets the deadline.
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        raw(
            addr,
            &format!(
                "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
                 content-length: 100\r\n\r\n{{\"role\""
            ),
        ),
    )
    .await
    .expect("answered once the deadline passed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--read-timeout"), "{answer}");
    // An idle keep-alive connection is closed after the deadline too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
    }
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
    assert!(health_latency(addr).await < Duration::from_secs(2));
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_step_ends_its_session_cleanly() {
    let dir = scratch("panic");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let running = start(&dir, validator, |_| {}).await;
    // No real input is known to panic; the hook stands in for a bug in a tool.
    running.server.set_step_hook(Box::new(|action| {
        if matches!(action, spar::episode::Action::ReadFile { path, .. } if path == "boom.py") {
            panic!("provoked by the test");
        }
    }));
    let mut c = running.client().await;
    let create = json!({"role": "injector", "project": "calc"});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let a = c
            .request("POST", "/v1/sessions", Some(&create))
            .await
            .unwrap();
        assert_eq!(a.status, 201, "{}", a.body);
        ids.push(a.body["session_id"].as_str().unwrap().to_owned());
    }
    let step = format!("/v1/sessions/{}/step", ids[0]);
    let boom = json!({"tool": "read_file", "path": "boom.py"});
    let a = c.request("POST", &step, Some(&boom)).await.unwrap();
    assert_eq!(a.status, 500, "{}", a.body);
    assert!(error_of(&a).contains("failed inside spar"), "{}", a.body);
    assert!(error_of(&a).contains("provoked by the test"), "{}", a.body);
    // The session is not wedged: it has ended, says why, and can be read and closed.
    let read = json!({"tool": "read_file", "path": "calc/ops.py"});
    let a = c.request("POST", &step, Some(&read)).await.unwrap();
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(!error_of(&a).contains("still running"), "{}", a.body);
    assert!(error_of(&a).contains("spar failed on a step"), "{}", a.body);
    let state = c
        .request("GET", &format!("/v1/sessions/{}", ids[0]), None)
        .await
        .unwrap();
    assert_eq!(state.status, 200, "{}", state.body);
    assert_eq!(state.body["done"], true);
    assert!(state.body["failed"]
        .as_str()
        .unwrap()
        .contains("provoked by the test"));
    let a = c
        .request("DELETE", &format!("/v1/sessions/{}", ids[0]), None)
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    // Other sessions and the server go on.
    let a = c
        .request(
            "POST",
            &format!("/v1/sessions/{}/step", ids[1]),
            Some(&read),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(running.server.open_sessions(), 1);
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_probe_the_host_file_system() {
    let dir = scratch("probe");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let running = start(&dir, validator, |_| {}).await;
    let mut c = running.client().await;
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "not an artifact").unwrap();
    // Missing, a directory, a file, an empty directory: one answer, naming no path.
    let mut answers = Vec::new();
    for path in [
        PathBuf::from("/nowhere/at/all"),
        PathBuf::from("/etc"),
        a_file,
        dir.clone(),
    ] {
        let body = json!({"role": "solver", "artifact": path});
        let a = c
            .request("POST", "/v1/sessions", Some(&body))
            .await
            .unwrap();
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(!error_of(&a).contains('/'), "{}", a.body);
        answers.push(error_of(&a).to_owned());
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
    // Project names are names, not paths: the same answer as for an unknown name.
    for project in ["../../etc", "/etc", "calc/../calc", ".", "elsewhere"] {
        let body = json!({"role": "injector", "project": project});
        let a = c
            .request("POST", "/v1/sessions", Some(&body))
            .await
            .unwrap();
        assert_eq!(a.status, 404, "{project}: {}", a.body);
        let expected = format!(
            "unknown project {project:?}: name a project of this server's corpus (`spar \
             corpus list` on the server lists them)"
        );
        assert_eq!(error_of(&a), expected);
    }
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn zero_limits_are_refused_with_exit_2() {
    for (flag, wanted) in [
        ("--idle-timeout", "positive number of seconds"),
        ("--max-body-bytes", "at least 1"),
        ("--max-connections", "at least 1"),
        ("--read-timeout", "positive number of seconds"),
        ("--shutdown-grace", "positive number of seconds"),
        ("--run-timeout", "positive number of seconds"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
            .args(["serve", flag, "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(wanted),
            "{flag}: {stderr}"
        );
    }
}

/// `spar serve --corpus PROJECT --pool-size N` makes procedural bugs at start-up, and a reset
/// with only a seed (OpenEnv's) plays one of them; a second start reuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_makes_a_task_pool_from_a_corpus_project_at_start_up() {
    use std::io::{BufRead, Read};
    let dir = scratch("pool-cli");
    for start in 0..2 {
        let out = dir.clone();
        // The first line is the address; a server that fails to start ends the output.
        // The reader stays open: a closed pipe would end the server at its next line.
        let (mut child, _stdout, listening) = tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
                .args([
                    "serve",
                    "--port",
                    "0",
                    "--token",
                    TOKEN,
                    "--corpus",
                    "moneyunits",
                ])
                .args(["--pool-size", "1", "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = String::new();
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            stdout.read_line(&mut first).unwrap();
            (child, stdout, first)
        })
        .await
        .unwrap();
        let addr: SocketAddr = listening
            .trim()
            .rsplit("http://")
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {listening:?}"));
        let mut c = Client::connect(addr, TOKEN).await.unwrap();
        let a = c
            .request("POST", "/reset", Some(&json!({"seed": 11})))
            .await
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(a.status, 200, "start {start}: {}", a.body);
        assert_eq!(a.body["observation"]["project"], "moneyunits");
        assert!(a.body["observation"]["text"]
            .as_str()
            .unwrap()
            .contains("Please fix the code"));
        let made = stderr.contains("making 1 procedural bugs in moneyunits");
        assert_eq!(made, start == 0, "start {start}: {stderr}");
        assert!(stderr.contains("task pool of 1 bugs"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `spar bench serve`'s phases against a real server (HTTP: create, read_file, bash grep, run;
/// WebSocket: reset, bash grep): every request is answered and
/// counted, and the test runs really run (each over a state of its own).
#[test]
fn the_serve_benchmark_measures_every_phase() {
    use spar::serve::bench::{bench, ServeBenchSettings};
    let settings = ServeBenchSettings {
        sessions: 6,
        connections: 2,
        reads: 2,
        test_runs: 2,
        workers: 2,
        ws_sessions: 3,
    };
    let project = common::calc_project(spar::corpus::Split::Train);
    let report = bench(common::python_arc(), project, &settings).unwrap();
    assert_eq!(report.create.requests, 6);
    assert_eq!(report.read_file.requests, 12);
    assert_eq!(report.bash_grep.requests, 12);
    assert_eq!(report.ws_reset.requests, 3);
    assert_eq!(report.ws_bash_grep.requests, 6);
    assert_eq!(report.test_run.requests, 2);
    assert!(report.test_run.p50_ms > report.read_file.p50_ms, "{report}");
}

/// Property tests of the surfaces that take untrusted input: the tool-call parser and the
/// HTTP request handling.
mod properties {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use spar::episode::tools::{parse_call, Profile, ToolCallError};
    use spar::episode::Action;

    /// Text an agent (or an attacker) might put anywhere: real names, paths that try to
    /// escape, regex syntax, control characters and arbitrary Unicode.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            Just("calc/ops.py".to_owned()),
            Just("../../etc/passwd".to_owned()),
            Just("/repo/calc".to_owned()),
            Just("/etc".to_owned()),
            Just("(a+)+$".to_owned()),
            "[ -~]{0,24}",
            any::<String>(),
        ]
    }

    fn line() -> impl Strategy<Value = Option<usize>> {
        prop_oneof![
            Just(None),
            (0usize..40).prop_map(Some),
            any::<usize>().prop_map(Some)
        ]
    }

    /// Every tool but the ones that run the sandbox (which cost seconds a call).
    fn cheap_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            text().prop_map(|path| Action::ListDir { path }),
            (text(), line(), line()).prop_map(|(path, start, end)| Action::ReadFile {
                path,
                start,
                end
            }),
            (text(), proptest::option::of(text()))
                .prop_map(|(pattern, path)| Action::Search { pattern, path }),
            (text(), text(), text()).prop_map(|(path, old, new)| Action::Edit { path, old, new }),
            (text(), text()).prop_map(|(path, content)| Action::Create { path, content }),
            Just(Action::Diff),
        ]
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => cheap_action(),
            1 => vec(text(), 0..4).prop_map(|args| Action::Run { args }),
            1 => text().prop_map(|command| Action::Bash { command }),
            1 => Just(Action::Submit),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "tool",
                "name",
                "arguments",
                "function",
                "type",
                "path",
                "start",
                "end",
                "pattern",
                "old",
                "new",
                "content",
                "args",
                "command",
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,8}",
        ]
    }

    /// Any JSON, biased towards the shapes of tool calls.
    fn json_value() -> impl Strategy<Value = Value> {
        let tool_names = proptest::sample::select(spar::episode::tools::Profile::Spar.names())
            .prop_map(|n| json!(n));
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            tool_names,
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map(key(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An action's arguments, as an OpenAI function call carries them.
    fn arguments(action: &Action) -> Value {
        let mut value = serde_json::to_value(action).unwrap();
        value.as_object_mut().unwrap().remove("tool");
        value
    }

    proptest! {
        #![proptest_config(Config::with_cases(256))]

        #[test]
        fn any_json_is_parsed_or_refused_with_a_reason(call in json_value()) {
            match parse_call(Profile::Spar, &call) {
                // What parses is exactly what spar's own form of it parses to.
                Ok(action) => {
                    let again = parse_call(Profile::Spar, &serde_json::to_value(&action).unwrap());
                    prop_assert_eq!(again, Ok(action));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn every_action_round_trips_in_every_form(action in action()) {
            let own = serde_json::to_value(&action).unwrap();
            prop_assert_eq!(parse_call(Profile::Spar, &own), Ok(action.clone()));
            let as_string = json!({"name": action.tool(), "arguments": arguments(&action).to_string()});
            prop_assert_eq!(parse_call(Profile::Spar, &as_string), Ok(action.clone()));
            let as_object = json!({"name": action.tool(), "arguments": arguments(&action)});
            prop_assert_eq!(parse_call(Profile::Spar, &as_object), Ok(action.clone()));
            let wrapped = json!({"type": "function", "function": as_string});
            prop_assert_eq!(parse_call(Profile::Spar, &wrapped), Ok(action));
        }

        #[test]
        fn unknown_tools_and_arguments_are_named(action in action(), extra in "[a-z]{1,8}x") {
            let mut call = serde_json::to_value(&action).unwrap();
            call[extra.as_str()] = json!(1);
            let refused = parse_call(Profile::Spar, &call);
            prop_assert!(
                matches!(&refused, Err(ToolCallError::Arguments { why, .. }) if why.contains(&extra)),
                "{:?}", refused
            );
            let unknown = json!({"tool": extra.clone()});
            prop_assert_eq!(parse_call(Profile::Spar, &unknown), Err(ToolCallError::Unknown { name: extra, profile: Profile::Spar }));
        }
    }

    /// One raw HTTP request, as arbitrary as a hostile client could make it.
    #[derive(Debug, Clone)]
    struct RawRequest {
        method: String,
        path: String,
        auth: Option<String>,
        body: Vec<u8>,
        /// Declare more body than is sent (the server must time out, not hang).
        short_body: bool,
    }

    fn raw_request() -> impl Strategy<Value = RawRequest> {
        let method = prop_oneof![
            proptest::sample::select(vec!["GET", "POST", "DELETE", "PUT"]).prop_map(str::to_owned),
            "[A-Z]{1,7}",
        ];
        let route = proptest::sample::select(spar::serve::ROUTES.to_vec()).prop_map(|(_, p)| p);
        let path = prop_oneof![
            (route, "[A-Za-z0-9%._~-]{0,12}", "[a-z=&%0-9._-]{0,16}")
                .prop_map(|(p, id, q)| format!("{}?{q}", p.replace("{id}", &id))),
            "/[!-~]{0,40}",
        ];
        let auth = prop_oneof![
            Just(Some(format!("Bearer {TOKEN}"))),
            Just(None),
            "[ -~]{0,20}".prop_map(Some),
        ];
        let create = (
            proptest::sample::select(vec!["solver", "injector", "judge"]),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(role, project, artifact)| {
                json!({"role": role, "project": project, "artifact": artifact})
                    .to_string()
                    .into_bytes()
            });
        let body = prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            cheap_action().prop_map(|a| serde_json::to_vec(&a).unwrap()),
            create,
            vec(any::<u8>(), 0..64),
        ];
        (method, path, auth, body, proptest::bool::weighted(0.03)).prop_map(
            |(method, path, auth, body, short_body)| RawRequest {
                method,
                path,
                auth,
                body,
                short_body,
            },
        )
    }

    /// Sends `request` on a fresh connection; the answer's status, or `None` when the server
    /// closed the connection without one.
    async fn send(
        addr: SocketAddr,
        request: &RawRequest,
    ) -> Result<Option<(u16, String)>, TestCaseError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let declared = request.body.len() + if request.short_body { 10 } else { 0 };
        let auth = request
            .auth
            .as_ref()
            .map(|a| format!("authorization: {a}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{} {} HTTP/1.1\r\nhost: spar\r\nconnection: close\r\n{auth}content-length: {declared}\r\n\r\n",
            request.method, request.path
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&request.body);
        // The server may answer and close before reading everything (a refused request).
        let _ = stream.write_all(&bytes).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer));
        prop_assert!(read.await.is_ok(), "no answer within 20 s to {:?}", request);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if answer.is_empty() {
            return Ok(None);
        }
        let status = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse().ok());
        prop_assert!(status.is_some(), "not HTTP: {:?}", answer);
        Ok(status.map(|s| (s, answer)))
    }

    #[test]
    fn arbitrary_requests_get_a_client_error_never_a_server_error() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = scratch("fuzz");
        let validator = Arc::new(Validator::new(ValidationSettings::default()));
        let running = runtime.block_on(start(&dir, validator, |s| {
            s.connections.read_timeout = Duration::from_secs(1);
            s.max_body_bytes = 4096;
        }));
        let addr = running.addr;
        // A real session, so that arbitrary steps reach the tools too.
        let session = runtime.block_on(async {
            let mut c = running.client().await;
            let a = c
                .request(
                    "POST",
                    "/v1/sessions",
                    Some(&json!({"role": "injector", "project": "calc"})),
                )
                .await
                .unwrap();
            a.body["session_id"].as_str().unwrap().to_owned()
        });
        let on_session = (raw_request(), any::<bool>()).prop_map(move |(mut r, real)| {
            if real && r.path.starts_with("/v1/sessions/") {
                r.path = format!("/v1/sessions/{session}/step");
                r.method = "POST".into();
            }
            r
        });
        let mut runner = TestRunner::new(Config::with_cases(160));
        runner
            .run(&on_session, |request| {
                runtime.block_on(async {
                    if let Some((status, answer)) = send(addr, &request).await? {
                        prop_assert!(status < 500, "{:?} got {}", request, answer);
                        let json = answer.contains("content-type: application/json");
                        if status >= 400 && json {
                            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
                            let body: Value = serde_json::from_str(body).unwrap_or_default();
                            prop_assert!(
                                !body["error"].as_str().unwrap_or_default().is_empty(),
                                "{:?} got {}",
                                request,
                                answer
                            );
                        }
                    }
                    Ok(())
                })
            })
            .unwrap();
        runtime.block_on(async {
            assert!(health_latency(addr).await < Duration::from_secs(2));
            running.stop().await;
        });
        std::fs::remove_dir_all(&dir).ok();
    }
}
