//! OpenEnv's surface of `spar serve`, as `openenv-core`'s own clients speak it.
//!
//! - `GET /ws`: one episode per WebSocket connection. Text frames `{"type": "reset", "data":
//!   {...}}`, `{"type": "step", "data": ACTION}`, `{"type": "state"}` and `{"type": "close"}`;
//!   answers `{"type": "observation", "data": {"observation", "reward", "done"}}`, `{"type":
//!   "state", "data": {"episode_id", "step_count", ...}}` or `{"type": "error", "data":
//!   {"message", "code"}}`, one frame per request, in order. An action is a tool call in any
//!   form spar reads (`{"tool": NAME, ...}` or `{"name", "arguments"}`), or an MCP-style
//!   `{"type": "list_tools"}` / `{"type": "call_tool", "tool_name", "arguments"}`.
//! - `POST /reset` and `POST /step` with OpenEnv's bodies (`{"seed", "episode_id", ...}`,
//!   `{"action", "timeout_s", "request_id"}`): a reset opens a session and its observation
//!   carries the `session_id` that a step names (HTTP has no connection to keep it).
//! - `GET /health`, `GET /schema`, `GET /metadata`.
//!
//! A reset with only a seed (unknown fields ignored) draws a bug from the server's task pool
//! ([`super::pool`]); a reset with spar's fields (`role`, `project`, `artifact_id`, `instance`,
//! `tools`) creates exactly that session.
//!
//! Authentication: the bearer token in `Authorization` (openenv 0.10's `headers=`), or, for
//! clients that cannot send headers (openenv-core 0.3), in the path: a client given
//! `http://HOST:PORT/t/TOKEN` as its base URL reaches `/t/TOKEN/ws`. The token is checked the
//! same way either way; nothing is reachable without it.

use super::{create, parse, state, step, ApiError, CreateSession, Role, Server};
use crate::episode::tools::{definitions, Profile};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// The routes that act on episodes (behind the token).
pub(super) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/ws", get(websocket))
        .route("/reset", post(reset))
        .route("/step", post(step_http))
        .route("/state", get(state_http))
}

/// The routes anyone may read.
pub(super) fn public_routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/health", get(health))
        .route("/schema", get(schema))
        .route("/metadata", get(metadata))
}

/// A reset's data: spar's session fields when given, else a draw from the pool by `seed`.
/// Fields it does not know are ignored, as OpenEnv's servers ignore what `reset` does not take.
#[derive(Debug, Default, Deserialize)]
struct ResetData {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    artifact: Option<PathBuf>,
    #[serde(default)]
    artifact_id: Option<String>,
    #[serde(default)]
    instance: Option<Value>,
    #[serde(default)]
    tools: Option<Profile>,
}

impl ResetData {
    /// The session to create; one that names no bug draws it from the pool.
    fn request(self) -> CreateSession {
        CreateSession {
            role: self.role.unwrap_or(Role::Solver),
            project: self.project,
            artifact: self.artifact,
            artifact_id: self.artifact_id,
            instance: self.instance,
            seed: self.seed.unwrap_or(0),
            tools: self.tools,
        }
    }
}

/// A created session's first observation, as OpenEnv's `data`: spar's session facts ride in
/// the observation (not under `tools`, which MCP clients read as a tool list).
fn reset_data(answer: &Value) -> Value {
    json!({
        "observation": {
            "text": answer["observation"]["text"],
            "error": false,
            "session_id": answer["session_id"],
            "role": answer["role"],
            "project": answer["project"],
            "task": answer["task"],
            "tool_definitions": answer["tools"],
            "max_turns": answer["max_turns"],
        },
        "reward": Value::Null,
        "done": false,
    })
}

/// A step's answer, as OpenEnv's `data`.
fn step_data(answer: &Value) -> Value {
    let done = answer["terminated"].as_bool().unwrap_or(false)
        || answer["truncated"].as_bool().unwrap_or(false);
    let mut observation = json!({
        "text": answer["observation"]["text"],
        "error": answer["observation"]["error"],
        "terminated": answer["terminated"],
        "truncated": answer["truncated"],
        "info": answer["info"],
    });
    if let Some(artifact) = answer.get("artifact") {
        observation["artifact"] = artifact.clone();
    }
    let mut data = json!({ "observation": observation, "reward": answer["reward"], "done": done });
    // A cluster node's finished episode, for the router's log (it takes it out again).
    if let Some(episode) = answer.get("episode") {
        data["episode"] = episode.clone();
    }
    data
}

/// An MCP-style step (`list_tools`, `call_tool`) as spar's call, or `None` for a plain one.
enum Mcp {
    ListTools,
    CallTool { name: String, call: Value },
}

fn mcp(action: &Value) -> Option<Mcp> {
    match action.get("type").and_then(Value::as_str)? {
        "list_tools" => Some(Mcp::ListTools),
        "call_tool" => {
            let name = action["tool_name"].as_str().unwrap_or_default().to_owned();
            let arguments = action.get("arguments").cloned().unwrap_or(json!({}));
            Some(Mcp::CallTool {
                call: json!({ "name": name, "arguments": arguments }),
                name,
            })
        }
        _ => None,
    }
}

/// The session's tools as MCP tool descriptions.
fn tool_list(profile: Profile) -> Value {
    let tools: Vec<Value> = definitions(profile)
        .iter()
        .map(|d| {
            json!({
                "name": d["function"]["name"],
                "description": d["function"]["description"],
                "input_schema": d["function"]["parameters"],
            })
        })
        .collect();
    json!({ "observation": { "tools": tools }, "reward": Value::Null, "done": false })
}

/// One WebSocket connection's episode.
struct Connection {
    server: Arc<Server>,
    session: Option<String>,
}

impl Connection {
    /// Answers one text frame: the reply frame (none for `close`) and whether to hang up.
    async fn answer(&mut self, text: &str) -> (Option<Value>, bool) {
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => {
                return (
                    Some(error_frame(&format!("Invalid JSON: {e}"), "INVALID_JSON")),
                    false,
                )
            }
        };
        let kind = message["type"].as_str().unwrap_or_default().to_owned();
        let data = message.get("data").cloned().unwrap_or(json!({}));
        let reply = match kind.as_str() {
            "reset" => self.reset(data).await,
            "step" => self.step(data).await,
            "state" => Ok(json!({ "type": "state", "data": self.state() })),
            "close" => {
                self.close();
                return (None, true);
            }
            other => {
                let message =
                    format!("Unknown message type: {other}; send reset, step, state or close");
                return (Some(error_frame(&message, "UNKNOWN_TYPE")), false);
            }
        };
        (Some(reply.unwrap_or_else(|e| api_error_frame(&e))), false)
    }

    async fn reset(&mut self, data: Value) -> Result<Value, ApiError> {
        let data: ResetData = serde_json::from_value(data)
            .map_err(|e| ApiError::bad(format!("the reset data does not fit: {e}")))?;
        self.close();
        let request = data.request();
        let answer = create(self.server.clone(), request).await?;
        self.session = answer["session_id"].as_str().map(str::to_owned);
        Ok(json!({ "type": "observation", "data": reset_data(&answer) }))
    }

    async fn step(&mut self, action: Value) -> Result<Value, ApiError> {
        let id = self.session.clone().ok_or_else(|| {
            ApiError::bad("no episode on this connection yet: send {\"type\": \"reset\"} first")
        })?;
        let data = match mcp(&action) {
            Some(Mcp::ListTools) => tool_list(self.server.session_tools(&id)?),
            Some(Mcp::CallTool { name, call }) => {
                let answer = step(self.server.clone(), id, call).await;
                call_tool_data(&name, answer)
            }
            None => step_data(&step(self.server.clone(), id, action).await?),
        };
        Ok(json!({ "type": "observation", "data": data }))
    }

    /// OpenEnv's state: `episode_id` and `step_count`, then spar's session state.
    fn state(&self) -> Value {
        let Some(id) = &self.session else {
            return json!({ "episode_id": Value::Null, "step_count": 0 });
        };
        openenv_state(&self.server, id)
            .unwrap_or_else(|e| json!({ "episode_id": id, "step_count": 0, "error": e.message }))
    }

    fn close(&mut self) {
        if let Some(id) = self.session.take() {
            self.server.close_session(&id);
        }
    }
}

/// An MCP `call_tool` answer: the tool's output as `result.data`; a call spar cannot read is
/// the MCP error the client raises.
fn call_tool_data(name: &str, answer: Result<Value, ApiError>) -> Value {
    match answer {
        Ok(answer) => {
            let mut data = step_data(&answer);
            data["observation"] = json!({
                "tool_name": name,
                "result": {
                    "data": answer["observation"]["text"],
                    "is_error": answer["observation"]["error"],
                },
                "error": Value::Null,
                "terminated": answer["terminated"],
                "truncated": answer["truncated"],
            });
            data
        }
        Err(e) => {
            let kind = if e.status == StatusCode::BAD_REQUEST {
                "invalid_args"
            } else {
                "execution_error"
            };
            json!({
                "observation": {
                    "tool_name": name,
                    "result": Value::Null,
                    "error": { "error_type": kind, "message": e.message },
                },
                "reward": Value::Null,
                "done": false,
            })
        }
    }
}

pub(super) fn error_frame(message: &str, code: &str) -> Value {
    json!({ "type": "error", "data": { "message": message, "code": code } })
}

fn api_error_frame(e: &ApiError) -> Value {
    let code = match e.status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => "VALIDATION_ERROR",
        StatusCode::TOO_MANY_REQUESTS => "CAPACITY_REACHED",
        _ => "EXECUTION_ERROR",
    };
    error_frame(&e.message, code)
}

async fn websocket(
    State(server): State<Arc<Server>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(not_a_websocket)?;
    let limit = server.settings.max_body_bytes;
    Ok(upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| serve_socket(server, socket)))
}

/// What a plain HTTP request to `/ws` hears: errors are JSON on every route, this one included.
pub(super) fn not_a_websocket(
    e: axum::extract::ws::rejection::WebSocketUpgradeRejection,
) -> ApiError {
    ApiError::new(
        e.status(),
        format!(
            "{}: GET /ws is OpenEnv's WebSocket; connect with a WebSocket client \
             (ws://HOST:PORT/ws, or ws://HOST:PORT/t/TOKEN/ws)",
            e.body_text()
        ),
    )
}

/// Plays one connection's episodes until the client closes, idles past the idle timeout, or the
/// server shuts down; its open session is closed then.
async fn serve_socket(server: Arc<Server>, mut socket: WebSocket) {
    let idle = server.settings.idle_timeout;
    let mut stopping = server.stopping.subscribe();
    let mut connection = Connection {
        server,
        session: None,
    };
    loop {
        let received = tokio::select! {
            received = tokio::time::timeout(idle, socket.recv()) => received,
            _ = stopping.changed() => break,
        };
        let text = match received {
            Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
            Ok(Some(Ok(Message::Binary(bytes)))) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            // Closed, broken, or idle past the timeout.
            _ => break,
        };
        let (reply, hang_up) = connection.answer(&text).await;
        if let Some(reply) = reply {
            if socket
                .send(Message::Text(reply.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        if hang_up {
            break;
        }
    }
    connection.close();
    let _ = socket.send(Message::Close(None)).await;
}

/// OpenEnv's HTTP step body; spar's `session_id` says which episode (extra fields ignored).
#[derive(Deserialize)]
struct StepBody {
    action: Value,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

async fn reset(
    State(server): State<Arc<Server>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(super::body_rejection)?;
    let data: ResetData = if body.iter().all(u8::is_ascii_whitespace) {
        ResetData::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad(format!("malformed reset JSON: {e}")))?
    };
    let request = data.request();
    let answer = create(server, request).await?;
    Ok(Json(reset_data(&answer)))
}

async fn step_http(
    State(server): State<Arc<Server>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let body: StepBody = parse(body)?;
    let id = body.session_id.ok_or_else(|| {
        ApiError::bad(
            "POST /step needs the session_id that POST /reset returned in its observation \
             (over HTTP there is no connection to keep the episode; /ws keeps it per connection)",
        )
    })?;
    let mut data = step_data(&step(server, id, body.action).await?);
    if let Some(request_id) = body.request_id {
        data["request_id"] = json!(request_id);
    }
    Ok(super::step_response(data))
}

#[derive(Deserialize)]
struct StateQuery {
    session_id: String,
}

async fn state_http(
    State(server): State<Arc<Server>>,
    query: Result<axum::extract::Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let axum::extract::Query(query) = query
        .map_err(|e| ApiError::bad(format!("{e}: GET /state?session_id=ID (from POST /reset)")))?;
    Ok(Json(openenv_state(&server, &query.session_id)?))
}

/// spar's session state with OpenEnv's `episode_id` (the session id) and `step_count`.
fn openenv_state(server: &Server, id: &str) -> Result<Value, ApiError> {
    let mut answer = state(server, id)?;
    answer["episode_id"] = json!(id);
    answer["step_count"] = answer["turn"].clone();
    Ok(answer)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "healthy" }))
}

async fn metadata() -> Json<Value> {
    Json(json!({
        "name": "spar",
        "description": "Self-play SWE-RL episodes in Wasmtime sandboxes: a solver repairs a bug \
                        in a Python repository from a test specification, graded by the \
                        repository's own tests; an injector writes bugs.",
        "readme_content": Value::Null,
        "version": env!("CARGO_PKG_VERSION"),
        "author": Value::Null,
        "documentation_url": Value::Null,
    }))
}

/// JSON Schemas of an action (a tool call of any profile), an observation and the state.
async fn schema() -> Json<Value> {
    let calls: Vec<Value> = Profile::ALL
        .iter()
        .flat_map(|p| definitions(*p))
        .map(|d| {
            json!({
                "type": "object",
                "description": format!("{}: {}", d["function"]["name"].as_str().unwrap_or_default(), "a tool call, its arguments inline or under `arguments`"),
                "properties": {
                    "name": {"const": d["function"]["name"]},
                    "arguments": d["function"]["parameters"],
                },
                "required": ["name"],
            })
        })
        .collect();
    Json(json!({
        "action": {"title": "ToolCall", "anyOf": calls},
        "observation": {
            "title": "Observation",
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "error": {"type": "boolean"},
                "terminated": {"type": "boolean"},
                "truncated": {"type": "boolean"},
                "info": {"type": "object"},
            },
            "required": ["text", "error"],
        },
        "state": {
            "title": "State",
            "type": "object",
            "properties": {
                "episode_id": {"type": ["string", "null"]},
                "step_count": {"type": "integer", "minimum": 0},
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_steps_become_spar_calls() {
        assert!(matches!(
            mcp(&json!({"type": "list_tools"})),
            Some(Mcp::ListTools)
        ));
        let Some(Mcp::CallTool { name, call }) =
            mcp(&json!({"type": "call_tool", "tool_name": "bash", "arguments": {"command": "ls"}}))
        else {
            panic!("a call_tool step")
        };
        assert_eq!(name, "bash");
        assert_eq!(
            call,
            json!({"name": "bash", "arguments": {"command": "ls"}})
        );
        assert!(mcp(&json!({"tool": "diff"})).is_none());
        let listed = tool_list(Profile::SweAgent);
        assert_eq!(listed["observation"]["tools"][0]["name"], "bash");
        assert!(
            listed["observation"]["tools"][0]["input_schema"]["properties"]["command"].is_object()
        );
    }

    #[test]
    fn step_answers_fold_termination_into_done() {
        let answer = json!({
            "observation": {"text": "submitted", "error": false},
            "reward": 1.0, "terminated": true, "truncated": false, "info": {"turn": 3},
        });
        let data = step_data(&answer);
        assert_eq!(data["done"], true);
        assert_eq!(data["reward"], 1.0);
        assert_eq!(data["observation"]["text"], "submitted");
        let error = api_error_frame(&ApiError::bad("no"));
        assert_eq!(
            error,
            json!({"type": "error", "data": {"message": "no", "code": "VALIDATION_ERROR"}})
        );
    }
}
