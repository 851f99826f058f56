//! The LLM driver against a scripted OpenAI-compatible endpoint started inside the test (real
//! HTTP on loopback): tool calling in both roles, retries on 429, token usage per episode, a
//! failing endpoint recorded as a harness error, and the CLI's error without an endpoint.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use spar::agents::llm::{LlmClient, LlmSettings};
use spar::agents::AgentKind;
use spar::episode::EpisodeSpec;
use spar::episode::{Action, EnvSettings, Task};
use spar::protocol::{ValidationSettings, Validator};
use spar::rollout::{InjectorSpec, Scheduler};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Script {
    requests: AtomicUsize,
    /// Answer every request with this status instead.
    always: Option<u16>,
    problems: Mutex<Vec<String>>,
}

fn call(id: usize, name: &str, arguments: Value) -> Value {
    json!({"id": format!("call_{id}"), "type": "function",
           "function": {"name": name, "arguments": arguments.to_string()}})
}

fn reply(message: Value) -> Response {
    Json(json!({
        "id": "chatcmpl-test", "object": "chat.completion", "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }))
    .into_response()
}

/// A model that fixes (solver) or breaks (injector) calc's `sub`, fumbling on the way.
async fn completions(
    State(script): State<Arc<Script>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let n = script.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = script.always {
        return (StatusCode::from_u16(status).unwrap(), "no").into_response();
    }
    if n == 0 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    let mut problems = Vec::new();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        problems.push("no bearer key".to_owned());
    }
    if body["model"] != "scripted"
        || body["tools"].as_array().map(Vec::len)
            != Some(spar::episode::tools::Profile::Spar.names().len())
    {
        problems.push(format!("model or tools: {}", body["model"]));
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let first_user = messages
        .get(1)
        .map(|m| m["content"].to_string())
        .unwrap_or_default();
    let assistants = messages.iter().filter(|m| m["role"] == "assistant").count();
    // Every tool call was answered, with its id.
    for (i, m) in messages.iter().enumerate() {
        if let Some(calls) = m["tool_calls"].as_array() {
            let id = &calls[0]["id"];
            if messages.get(i + 1).map(|n| &n["tool_call_id"]) != Some(id) {
                problems.push(format!("tool call {id} unanswered"));
            }
        }
    }
    script.problems.lock().unwrap().extend(problems);
    if first_user.contains("realistic bug") {
        return reply(match assistants {
            0 => json!({"role": "assistant", "content": null, "tool_calls": [call(0, "edit",
                json!({"path": "calc/ops.py", "old": "return a - b", "new": "return a + b"}))]}),
            _ => {
                json!({"role": "assistant", "content": null, "tool_calls": [call(1, "submit", json!({}))]})
            }
        });
    }
    reply(match assistants {
        0 => json!({"role": "assistant", "content": null,
                    "tool_calls": [call(0, "read_file", json!({"path": "calc/ops.py"}))]}),
        1 => {
            let read = messages
                .last()
                .map(|m| m["content"].to_string())
                .unwrap_or_default();
            if !read.contains("def sub") {
                script
                    .problems
                    .lock()
                    .unwrap()
                    .push("the file did not come back".into());
            }
            json!({"role": "assistant", "content": "Let me think about it."})
        }
        2 => json!({"role": "assistant", "content": null,
                    "tool_calls": [call(2, "edit", json!({"path": "calc/ops.py"}))]}),
        3 => json!({"role": "assistant", "content": null, "tool_calls": [call(3, "edit", json!({
                "path": "calc/ops.py", "old": "return a + b\n\n\ndef mul", "new": "return a - b\n\n\ndef mul"}))]}),
        _ => {
            json!({"role": "assistant", "content": null, "tool_calls": [call(4, "submit", json!({}))]})
        }
    })
}

fn start(script: Arc<Script>) -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(script);
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, url)
}

fn client(url: &str) -> Arc<LlmClient> {
    // One variable, always set to the same value, never removed.
    std::env::set_var("SPAR_TEST_LLM_KEY", "sk-test");
    let mut settings = LlmSettings::new(url, "scripted");
    settings.api_key_env = Some("SPAR_TEST_LLM_KEY".into());
    settings.backoff = Duration::from_millis(10);
    settings.max_retries = 2;
    Arc::new(LlmClient::new(settings).unwrap())
}

fn calc_task(validator: &Validator) -> Arc<Task> {
    common::calc_task(validator).2
}

fn play(
    validator: Arc<Validator>,
    kind: AgentKind,
    task: Arc<Task>,
    n: usize,
) -> Vec<spar::episode::EpisodeRecord> {
    let scheduler = Scheduler::new(common::python_arc(), validator, 2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let specs = (0..n)
        .map(|attempt| EpisodeSpec {
            task: task.clone(),
            attempt,
            seed: attempt as u64,
            round: 1,
        })
        .collect();
    runtime.block_on(scheduler.run_episodes(
        specs,
        ("llm".into(), kind.factory()),
        EnvSettings::default(),
        n,
        None,
    ))
}

#[test]
fn an_llm_solves_through_tool_calls_with_retries_and_usage() {
    let script = Arc::new(Script::default());
    let (_server, url) = start(script.clone());
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let task = calc_task(&validator);
    let records = play(validator, AgentKind::Llm(Some(client(&url))), task, 2);
    assert!(
        script.problems.lock().unwrap().is_empty(),
        "{:?}",
        script.problems.lock().unwrap()
    );
    for r in &records {
        assert_eq!(r.error, None);
        assert!(r.solved, "{:?}", r.observations.last());
        assert_eq!(r.reward, 1.0);
        // read_file, the bad edit's error is the model's, the fix, submit: three actions.
        assert_eq!(r.actions.len(), 3, "{:?}", r.actions);
        let usage = r.usage.as_ref().unwrap();
        assert_eq!(usage["requests"], 5, "{usage}");
        assert_eq!(usage["prompt_tokens"], 50);
        assert_eq!(usage["completion_tokens"], 25);
    }
    let retries: u64 = records
        .iter()
        .map(|r| r.usage.as_ref().unwrap()["retries"].as_u64().unwrap())
        .sum();
    assert_eq!(retries, 1, "the one 429 was retried");
    assert_eq!(script.requests.load(Ordering::SeqCst), 11);
}

#[test]
fn an_llm_injects_through_the_same_tools() {
    let script = Arc::new(Script::default());
    script.requests.store(1, Ordering::SeqCst); // no 429 this time
    let (_server, url) = start(script.clone());
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let project = Arc::new(common::calc_project(spar::corpus::Split::Train));
    // The scheduler's one driver plays the injector as it plays solvers.
    let scheduler = Scheduler::new(common::python_arc(), validator, 2);
    let spec = InjectorSpec {
        project,
        index: 0,
        seed: 1,
        round: 1,
    };
    let llm = AgentKind::Llm(Some(client(&url)));
    let mut played = spar::rollout::runtime(2)
        .unwrap()
        .block_on(scheduler.run_injector_episodes(
            vec![spec],
            (llm.to_string(), llm.factory()),
            EnvSettings::default(),
        ));
    let (record, injected) = played.remove(0);
    assert_eq!(record.role, "injector");
    assert_eq!(record.actions.last(), Some(&Action::Submit), "{record:?}");
    assert!(record.terminated && record.error.is_none(), "{record:?}");
    let injected = injected.expect("a valid artifact");
    assert_eq!(record.task, injected.artifact.id());
    assert!(injected
        .validation
        .fail_to_pass
        .contains(&"tests/test_calc.py::test_sub".to_owned()));
    assert_eq!(record.usage.as_ref().unwrap()["requests"], 2);
    assert!(
        script.problems.lock().unwrap().is_empty(),
        "{:?}",
        script.problems.lock().unwrap()
    );
}

#[test]
fn an_unreachable_model_is_a_harness_error_and_the_cli_says_what_is_missing() {
    let script = Arc::new(Script {
        always: Some(503),
        ..Script::default()
    });
    let (_server, url) = start(script.clone());
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let task = calc_task(&validator);
    let records = play(validator, AgentKind::Llm(Some(client(&url))), task, 1);
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("503"), "{error}");
    assert_eq!(
        script.requests.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );

    let out = std::env::temp_dir().join(format!("spar-llm-cli-{}", std::process::id()));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--quiet", "selfplay", "--corpus", "exprcalc", "--solver", "llm", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--llm-base-url"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}
