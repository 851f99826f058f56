//! `spar route` over real HTTP on loopback in front of two real `spar serve` nodes (in
//! process, the real guest): registration checks, placement by load, sticky sessions and
//! artifacts, the injector's reward through the router, OpenEnv's HTTP routes and `/ws`
//! carried to the nodes, the router's own episode log, and a dead node's sessions failing with
//! 410 while new sessions go to the live node.

mod common;

use common::scratch;
use common::server::{artifact_dir, start, Running, TOKEN};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use spar::protocol::{ValidationSettings, Validator};
use spar::serve::client::Client;
use spar::serve::pool::TaskPool;
use spar::serve::route::{self, Route, RouteSettings};
use spar::serve::ConnectionSettings;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const ROUTER_TOKEN: &str = "router-token";
const FIX: (&str, &str) = ("return a + b\n\n\ndef mul", "return a - b\n\n\ndef mul");
const BUG: (&str, &str) = ("return a - b", "return a + b");

async fn node(dir: &Path, name: &str, validator: &Arc<Validator>, pool: &TaskPool) -> Running {
    let pool = pool.clone();
    start(&dir.join(name), validator.clone(), |s| {
        s.node = Some(name.into());
        s.pool = pool;
    })
    .await
}

async fn router(dir: &Path) -> SocketAddr {
    let route = Route::new(RouteSettings {
        token: ROUTER_TOKEN.into(),
        log: dir.join("router").join("episodes.jsonl"),
        health_interval: Duration::from_millis(50),
        max_body_bytes: 1 << 20,
        connections: ConnectionSettings::default(),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(route::serve(route, listener, std::future::pending()));
    addr
}

fn node_of(id: &Value) -> String {
    id.as_str().unwrap().split('.').next().unwrap().to_owned()
}

fn logged(dir: &Path) -> Vec<Value> {
    let log = std::fs::read_to_string(dir.join("router").join("episodes.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn register(c: &mut Client, name: &str, addr: SocketAddr, token: &str) -> (u16, String) {
    let body = json!({"url": format!("http://{addr}"), "token": token});
    let path = format!("/v1/nodes/{name}");
    let answer = c.request("PUT", &path, Some(&body)).await.unwrap();
    (
        answer.status,
        answer.body["error"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_carries_every_kind_of_request_to_the_node_that_owns_it() {
    let dir = scratch("route");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let pool = TaskPool::load(&artifact_dir(&validator, &dir)).unwrap();
    let a = node(&dir, "a", &validator, &pool).await;
    let b = node(&dir, "b", &validator, &pool).await;
    let addr = router(&dir).await;
    let mut c = Client::connect(addr, ROUTER_TOKEN).await.unwrap();

    // Registration checks the node's name, token and address before trusting it.
    let (status, error) = register(&mut c, "a", b.addr, TOKEN).await;
    assert_eq!(status, 400);
    assert!(error.contains("calls itself \"b\""), "{error}");
    let (status, error) = register(&mut c, "a", a.addr, "wrong").await;
    assert!(
        status == 400 && error.contains("refuses that token"),
        "{error}"
    );
    let body = json!({"url": "ftp://x", "token": TOKEN});
    let bad = c.request("PUT", "/v1/nodes/a", Some(&body)).await.unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    let mut stranger = Client::connect(addr, TOKEN).await.unwrap();
    let refused = stranger.request("GET", "/v1/nodes", None).await.unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(register(&mut c, "a", a.addr, TOKEN).await.0, 200);
    assert_eq!(register(&mut c, "b", b.addr, TOKEN).await.0, 200);

    // New sessions spread by load; every later request goes to the node the id names.
    let mut sessions = Vec::new();
    for seed in 0..4 {
        let create = json!({"role": "solver", "seed": seed});
        let answer = c
            .request("POST", "/v1/sessions", Some(&create))
            .await
            .unwrap();
        assert_eq!(answer.status, 201, "{}", answer.body);
        sessions.push(answer.body["session_id"].as_str().unwrap().to_owned());
    }
    let mut nodes: Vec<String> = sessions.iter().map(|s| node_of(&json!(s))).collect();
    nodes.sort();
    assert_eq!(nodes, ["a", "a", "b", "b"]);
    let edit = json!({"tool": "edit", "path": "calc/ops.py", "old": FIX.0, "new": FIX.1});
    let step = format!("/v1/sessions/{}/step", sessions[0]);
    assert_eq!(
        c.request("POST", &step, Some(&edit)).await.unwrap().status,
        200
    );
    let end = c
        .request("POST", &step, Some(&json!({"tool": "submit"})))
        .await
        .unwrap();
    assert_eq!(end.body["reward"], 1.0, "{}", end.body);
    assert!(
        end.body.get("episode").is_none(),
        "the record is the router's"
    );
    let state = format!("/v1/sessions/{}", sessions[0]);
    let state = c.request("GET", &state, None).await.unwrap();
    assert_eq!(
        (state.body["done"].as_bool(), state.body["turn"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(logged(&dir)[0]["episode"], json!(sessions[0]));
    assert_eq!(logged(&dir)[0]["reward"], 1.0);

    // Ids that name no node, and paths on one machine's disk, are refused with what to send.
    let unknown = c.request("GET", "/v1/sessions/zz.s1", None).await.unwrap();
    assert_eq!(unknown.status, 404);
    assert!(unknown.body["error"]
        .as_str()
        .unwrap()
        .contains("node \"zz\""));
    let path = json!({"role": "solver", "artifact": "/etc"});
    let refused = c
        .request("POST", "/v1/sessions", Some(&path))
        .await
        .unwrap();
    assert_eq!(refused.status, 400);
    assert!(refused.body["error"]
        .as_str()
        .unwrap()
        .contains("artifact_id"));

    injector_reward_through_the_router(&mut c).await;
    openenv_through_the_router(&mut c, addr, &dir).await;

    // A dead node: its sessions fail with 410, the live node's go on, new sessions avoid it.
    let on_b = sessions
        .iter()
        .find(|s| s.starts_with("b."))
        .unwrap()
        .clone();
    let on_a = sessions
        .iter()
        .find(|s| s.starts_with("a.") && **s != sessions[0])
        .unwrap();
    b.stop().await;
    let ls = json!({"tool": "bash", "command": "ls"});
    let lost = c
        .request("POST", &format!("/v1/sessions/{on_b}/step"), Some(&ls))
        .await
        .unwrap();
    assert_eq!(lost.status, 410, "{}", lost.body);
    assert!(lost.body["error"]
        .as_str()
        .unwrap()
        .contains("node b is down"));
    let alive = c
        .request("POST", &format!("/v1/sessions/{on_a}/step"), Some(&ls))
        .await
        .unwrap();
    assert_eq!(alive.status, 200, "{}", alive.body);
    for seed in 10..13 {
        let create = json!({"role": "solver", "seed": seed});
        let answer = c
            .request("POST", "/v1/sessions", Some(&create))
            .await
            .unwrap();
        assert_eq!(node_of(&answer.body["session_id"]), "a", "{}", answer.body);
    }
    let health = c.request("GET", "/v1/health", None).await.unwrap();
    assert_eq!(health.body["live_nodes"], 1, "{}", health.body);
    a.stop().await;
}

/// An injector session's artifact lives on its node; solver sessions on it go there, and its
/// reward is read through the router.
async fn injector_reward_through_the_router(c: &mut Client) {
    let create = json!({"role": "injector", "project": "calc"});
    let injector = c
        .request("POST", "/v1/sessions", Some(&create))
        .await
        .unwrap();
    let id = injector.body["session_id"].clone();
    let step = format!("/v1/sessions/{}/step", id.as_str().unwrap());
    let bug = json!({"tool": "edit", "path": "calc/ops.py", "old": BUG.0, "new": BUG.1});
    c.request("POST", &step, Some(&bug)).await.unwrap();
    let submit = json!({"tool": "submit"});
    let submitted = c.request("POST", &step, Some(&submit)).await.unwrap();
    let artifact = submitted.body["artifact"]["id"].clone();
    assert_eq!(node_of(&artifact), node_of(&id), "{}", submitted.body);
    for fix in [true, false] {
        let create = json!({"role": "solver", "artifact_id": artifact});
        let solver = c
            .request("POST", "/v1/sessions", Some(&create))
            .await
            .unwrap();
        assert_eq!(node_of(&solver.body["session_id"]), node_of(&id));
        let step = format!(
            "/v1/sessions/{}/step",
            solver.body["session_id"].as_str().unwrap()
        );
        if fix {
            let edit = json!({"tool": "edit", "path": "calc/ops.py", "old": FIX.0, "new": FIX.1});
            c.request("POST", &step, Some(&edit)).await.unwrap();
        }
        c.request("POST", &step, Some(&submit)).await.unwrap();
    }
    let status = format!("/v1/artifacts/{}?wait=10", artifact.as_str().unwrap());
    let status = c.request("GET", &status, None).await.unwrap();
    assert_eq!(status.body["complete"], true, "{}", status.body);
    assert_eq!(status.body["solve_rate"], 0.5);
}

/// OpenEnv's HTTP reset/step and its WebSocket, through the router; finished episodes land in
/// the router's log either way.
async fn openenv_through_the_router(c: &mut Client, addr: SocketAddr, dir: &Path) {
    let before = logged(dir).len();
    let reset = c
        .request("POST", "/reset", Some(&json!({"seed": 5})))
        .await
        .unwrap();
    let id = reset.body["observation"]["session_id"].clone();
    assert!(id.as_str().unwrap().contains('.'), "{}", reset.body);
    let step = json!({"session_id": id, "action": {"tool": "submit"}});
    let answer = c.request("POST", "/step", Some(&step)).await.unwrap();
    assert_eq!(answer.body["done"], true, "{}", answer.body);
    assert!(answer.body.get("episode").is_none());
    let state = format!("/state?session_id={}", id.as_str().unwrap());
    assert_eq!(
        c.request("GET", &state, None).await.unwrap().body["step_count"],
        1
    );

    let url = format!("ws://{addr}/t/{ROUTER_TOKEN}/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ask = async |frame: Value| -> Value {
        socket.send(Message::text(frame.to_string())).await.unwrap();
        let answer = socket.next().await.unwrap().unwrap();
        serde_json::from_str(answer.to_text().unwrap()).unwrap()
    };
    let no_episode = ask(json!({"type": "step", "data": {"tool": "submit"}})).await;
    assert_eq!(no_episode["type"], "error", "{no_episode}");
    let reset = ask(json!({"type": "reset", "data": {"seed": 6}})).await;
    assert_eq!(reset["type"], "observation", "{reset}");
    let ls = ask(json!({"type": "step", "data": {"tool": "bash", "command": "ls calc"}})).await;
    assert!(
        ls["data"]["observation"]["text"]
            .as_str()
            .unwrap()
            .contains("ops.py"),
        "{ls}"
    );
    let end = ask(json!({"type": "step", "data": {"tool": "submit"}})).await;
    assert_eq!(end["data"]["done"], true, "{end}");
    assert!(end["data"].get("episode").is_none(), "{end}");
    assert_eq!(logged(dir).len(), before + 2);
}

#[test]
fn spar_bench_route_measures_the_three_ways_and_the_overhead() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .args([
            "-q",
            "bench",
            "route",
            "--episodes",
            "2",
            "--concurrency",
            "2",
        ])
        .args(["--reads", "2", "--overhead-steps", "20", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for way in ["direct", "one_node", "two_nodes"] {
        assert!(
            report[way]["episodes_per_s"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert_eq!(report[way]["test_run"]["requests"], 2, "{report}");
        assert_eq!(report[way]["read_file"]["requests"], 4, "{report}");
    }
    assert_eq!(report["overhead_routed"]["requests"], 20, "{report}");
    assert!(
        report["router_overhead_p50_ms"].as_f64().is_some(),
        "{report}"
    );
}

#[test]
fn a_malformed_nodes_file_is_refused_with_its_shape() {
    let dir = scratch("route-nodes");
    let file = dir.join("nodes.json");
    std::fs::write(&file, r#"{"n0": {"url": "http://127.0.0.1:1"}}"#).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["route", "--port", "0", "--nodes"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("give a JSON object"), "{stderr}");
    assert!(stderr.contains("token"), "{stderr}");
}
