//! `spar bench serve`: requests per second and step latency of a real server on loopback, for
//! cheap tools (`read_file`, a `bash` `grep -rn`) across many concurrent sessions, for test
//! runs, and for OpenEnv's WebSocket path (one episode per connection).

use super::client::{Client, ClientError};
use super::{serve, ServeSettings, Server};
use crate::corpus::OpenProject;
use crate::guest::Python;
use crate::protocol::{ValidationSettings, Validator};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `spar bench serve` does.
#[derive(Clone, Debug)]
pub struct ServeBenchSettings {
    /// Sessions open at once.
    pub sessions: usize,
    /// Keep-alive connections the sessions are driven over, concurrently.
    pub connections: usize,
    /// `read_file` steps per session.
    pub reads: usize,
    /// Sessions that each make one test run (of a state no other run has seen).
    pub test_runs: usize,
    /// Sandbox runs at once.
    pub workers: usize,
    /// WebSocket connections (one episode each) driven at once over `/ws`.
    pub ws_sessions: usize,
}

/// The shell step both the HTTP and the WebSocket phases measure.
const GREP: &str = "grep -rn def .";

/// Latency percentiles of one kind of request, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub requests: usize,
    /// Requests per second over the phase (all sessions together).
    pub requests_per_s: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// The measurements.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServeBench {
    /// The project the sessions played in.
    pub project: String,
    /// Sessions open at once.
    pub sessions: usize,
    /// Connections they were driven over.
    pub connections: usize,
    /// Creating the sessions.
    pub create: Latency,
    /// `read_file` steps.
    pub read_file: Latency,
    /// `bash` steps running `grep -rn def .` over the repository.
    pub bash_grep: Latency,
    /// Episodes opened over `/ws` (connect and reset).
    pub ws_reset: Latency,
    /// `bash` `grep -rn` steps over `/ws`.
    pub ws_bash_grep: Latency,
    /// WebSocket connections driven at once.
    pub ws_sessions: usize,
    /// Test runs (`run` of the project's test command).
    pub test_run: Latency,
    /// Sandbox runs at once.
    pub workers: usize,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeBenchError {
    /// The server could not start.
    #[error(transparent)]
    Serve(#[from] super::ServeError),
    /// A request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server answered with an error.
    #[error("{what} answered {status}: {body}")]
    Answer {
        /// What was asked, for the message (`creating a session`, `read_file`, `run`).
        what: &'static str,
        /// The HTTP status code it answered, not the one expected.
        status: u16,
        /// The answer's JSON body as text (`null` when empty).
        body: String,
    },
    /// The project has no Python file for the benchmark's reads.
    #[error("{0} has no Python file to read")]
    NoPythonFile(String),
    /// The async runtime or the listening socket could not be set up.
    #[error("setting up the benchmark's server")]
    Setup(#[source] std::io::Error),
    /// A client task of the benchmark crashed.
    #[error("a benchmark client crashed")]
    Crashed(#[source] tokio::task::JoinError),
    /// A process of the benchmark (`spar serve`, `spar route`) did not print its address.
    #[error("the benchmark's process `{0}` did not start")]
    Start(String),
    /// The WebSocket path failed.
    #[error("the WebSocket client: {0}")]
    WebSocket(String),
}

/// The body of an answer with status `ok`, else the answer as an error.
pub(crate) fn expect(
    what: &'static str,
    answer: super::client::Answer,
    ok: u16,
) -> Result<serde_json::Value, ServeBenchError> {
    if answer.status == ok {
        Ok(answer.body)
    } else {
        Err(ServeBenchError::Answer {
            what,
            status: answer.status,
            body: answer.body.to_string(),
        })
    }
}

/// Percentiles of `ms` and the rate over `wall`.
pub(crate) fn latency(mut ms: Vec<f64>, wall: Duration) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| crate::rollout::percentile(&ms, q);
    Latency {
        requests: ms.len(),
        requests_per_s: ms.len() as f64 / wall.as_secs_f64().max(1e-9),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

/// Serves on an ephemeral loopback port and measures: `sessions` injector sessions created at
/// once, `reads` `read_file` steps each (all sessions concurrently), then `test_runs` sessions
/// each running the test suite over a state of its own (so the run memo cannot answer).
pub fn bench(
    python: Arc<Python>,
    project: OpenProject,
    settings: &ServeBenchSettings,
) -> Result<ServeBench, ServeBenchError> {
    let dir = std::env::temp_dir().join(format!("spar-bench-serve-{}", std::process::id()));
    let token = super::new_token();
    let name = project.name.clone();
    let test_args = project.test_command.args.clone();
    let file = project
        .repo
        .files()
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.ends_with(".py") && !p.starts_with("tests"))
        .ok_or_else(|| ServeBenchError::NoPythonFile(name.clone()))?;
    let server = bench_server(python, project, settings, &dir, &token)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::par::cores().max(2))
        .enable_all()
        .build()
        .map_err(ServeBenchError::Setup)?;
    let connections = settings.connections.clamp(1, settings.sessions.max(1));
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ServeBenchError::Setup)?;
        let addr = listener.local_addr().map_err(ServeBenchError::Setup)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server_task = tokio::spawn(serve(server, listener, async {
            let _ = stopped.await;
        }));
        let phases = async {
            let request = json!({"role": "injector", "project": name});
            let sessions = (settings.sessions, connections);
            let (clients, create) = create_sessions(addr, &token, &request, sessions).await?;
            let read_call = json!({"tool": "read_file", "path": file, "start": 1, "end": 40});
            let (clients, read) = cheap_steps(clients, &read_call, settings.reads).await?;
            let grep_call = json!({"tool": "bash", "command": GREP});
            let (clients, grep) = cheap_steps(clients, &grep_call, settings.reads).await?;
            let runners = clients
                .into_iter()
                .filter_map(|(client, ids)| Some((client, ids.first()?.clone())))
                .take(settings.test_runs)
                .collect();
            let run = test_runs(runners, &test_args).await?;
            let ws = (settings.ws_sessions, settings.reads);
            let (ws_reset, ws_grep) = websocket_steps(addr, &token, &request, ws).await?;
            Ok::<_, ServeBenchError>((create, read, grep, run, ws_reset, ws_grep))
        };
        let measured = phases.await;
        let _ = stop.send(());
        server_task.await.map_err(ServeBenchError::Crashed)??;
        measured
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (create, read_file, bash_grep, test_run, ws_reset, ws_bash_grep) = result?;
    Ok(ServeBench {
        project: name,
        sessions: settings.sessions,
        connections,
        create,
        read_file,
        bash_grep,
        ws_reset,
        ws_bash_grep,
        ws_sessions: settings.ws_sessions,
        test_run,
        workers: settings.workers,
        peak_rss_mib: crate::rollout::peak_rss_mib(),
    })
}

/// A server over `project` alone, logging into `dir`.
fn bench_server(
    python: Arc<Python>,
    project: OpenProject,
    settings: &ServeBenchSettings,
    dir: &std::path::Path,
    token: &str,
) -> Result<Arc<Server>, ServeBenchError> {
    let (log, artifacts_dir) = super::default_paths(dir);
    let serve_settings = ServeSettings {
        token: token.to_owned(),
        max_sessions: settings.sessions + settings.ws_sessions + settings.test_runs + 16,
        max_body_bytes: 1 << 20,
        idle_timeout: Duration::from_secs(600),
        env: crate::episode::EnvSettings::default(),
        tools: Default::default(),
        pool: Default::default(),
        attempts: crate::episode::rewards::DEFAULT_ATTEMPTS,
        alpha: crate::episode::rewards::DEFAULT_ALPHA,
        workers: settings.workers,
        log,
        artifacts_dir,
        connections: super::ConnectionSettings {
            max_connections: settings.connections + settings.ws_sessions + 16,
            ..super::ConnectionSettings::default()
        },
        node: None,
    };
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let only = Box::new(move |wanted: &str| match wanted == project.name {
        true => Ok(project.clone()),
        false => Err(crate::corpus::CorpusError::NoSuchProject(wanted.to_owned())),
    });
    Ok(Server::new(python, validator, serve_settings, only)?)
}

/// Phase 1: `sessions` sessions created over `connections` connections at once. Returns
/// each connection with the sessions it made.
async fn create_sessions(
    addr: std::net::SocketAddr,
    token: &str,
    create: &serde_json::Value,
    (sessions, connections): (usize, usize),
) -> Result<(Vec<(Client, Vec<String>)>, Latency), ServeBenchError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (token, create) = (token.to_owned(), create.clone());
        let count = sessions / connections + usize::from(worker < sessions % connections);
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, &token).await?;
            let mut made = Vec::new();
            for _ in 0..count {
                let t = Instant::now();
                let a = client
                    .request("POST", "/v1/sessions", Some(&create))
                    .await?;
                made.push((t.elapsed(), a));
            }
            Ok::<_, ServeBenchError>((client, made))
        }));
    }
    let mut clients = Vec::new();
    let mut create_ms = Vec::new();
    for t in tasks {
        let (client, made) = t.await.map_err(ServeBenchError::Crashed)??;
        let mut ids = Vec::new();
        for (took, answer) in made {
            let body = expect("creating a session", answer, 201)?;
            ids.push(body["session_id"].as_str().unwrap_or_default().to_owned());
            create_ms.push(took.as_secs_f64() * 1e3);
        }
        clients.push((client, ids));
    }
    Ok((clients, latency(create_ms, started.elapsed())))
}

/// Phase 2: `reads` steps of `call` over every session, all connections at once.
async fn cheap_steps(
    clients: Vec<(Client, Vec<String>)>,
    call: &serde_json::Value,
    reads: usize,
) -> Result<(Vec<(Client, Vec<String>)>, Latency), ServeBenchError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut client, ids) in clients {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            for _ in 0..reads {
                for id in &ids {
                    let t = Instant::now();
                    let path = format!("/v1/sessions/{id}/step");
                    let a = client.request("POST", &path, Some(&call)).await?;
                    expect("a cheap step", a, 200)?;
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok::<_, ServeBenchError>((client, ids, ms))
        }));
    }
    let mut step_ms = Vec::new();
    let mut clients = Vec::new();
    for t in tasks {
        let (client, ids, ms) = t.await.map_err(ServeBenchError::Crashed)??;
        step_ms.extend(ms);
        clients.push((client, ids));
    }
    Ok((clients, latency(step_ms, started.elapsed())))
}

/// Phase 3: one test run per session, each over a state of its own (a file written first).
async fn test_runs(
    runners: Vec<(Client, String)>,
    test_args: &[String],
) -> Result<Latency, ServeBenchError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut client, id)) in runners.into_iter().enumerate() {
        let run = json!({"tool": "run", "args": test_args});
        tasks.push(tokio::spawn(async move {
            let path = format!("/v1/sessions/{id}/step");
            let (marker, content) = (format!("bench_{i}.txt"), format!("{i}\n"));
            let create = json!({"tool": "create", "path": marker, "content": content});
            client.request("POST", &path, Some(&create)).await?;
            let t = Instant::now();
            let a = client.request("POST", &path, Some(&run)).await?;
            expect("run", a, 200)?;
            Ok::<_, ServeBenchError>(t.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let mut run_ms = Vec::new();
    for t in tasks {
        run_ms.push(t.await.map_err(ServeBenchError::Crashed)??);
    }
    Ok(latency(run_ms, started.elapsed()))
}

/// Phase 4: OpenEnv's `/ws`: `sessions` connections at once, each one episode (connect and
/// reset) and then `steps` `bash` `grep -rn` steps, as `openenv-core`'s client sends them.
async fn websocket_steps(
    addr: std::net::SocketAddr,
    token: &str,
    create: &serde_json::Value,
    (sessions, steps): (usize, usize),
) -> Result<(Latency, Latency), ServeBenchError> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let failed =
        |e: tokio_tungstenite::tungstenite::Error| ServeBenchError::WebSocket(e.to_string());
    let started = Instant::now();
    let url = format!("ws://{addr}/t/{token}/ws");
    let reset = json!({"type": "reset", "data": create}).to_string();
    let step = json!({"type": "step", "data": {"tool": "bash", "command": GREP}}).to_string();
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (url, reset, step) = (url.clone(), reset.clone(), step.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let (mut socket, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(failed)?;
            let mut ask = async |text: &str| -> Result<f64, ServeBenchError> {
                let t = Instant::now();
                socket.send(Message::text(text)).await.map_err(failed)?;
                let answer = socket.next().await.ok_or_else(|| {
                    ServeBenchError::WebSocket("the server closed the connection".into())
                })?;
                let answer = answer.map_err(failed)?.into_text().map_err(failed)?;
                if answer.contains("\"type\":\"error\"") {
                    return Err(ServeBenchError::WebSocket(answer.to_string()));
                }
                Ok(t.elapsed().as_secs_f64() * 1e3)
            };
            ask(&reset).await?;
            let reset_ms = t.elapsed().as_secs_f64() * 1e3;
            let mut step_ms = Vec::new();
            for _ in 0..steps {
                step_ms.push(ask(&step).await?);
            }
            let _ = socket.send(Message::text(r#"{"type":"close"}"#)).await;
            Ok::<_, ServeBenchError>((reset_ms, step_ms))
        }));
    }
    let (mut reset_ms, mut step_ms) = (Vec::new(), Vec::new());
    for t in tasks {
        let (reset, steps) = t.await.map_err(ServeBenchError::Crashed)??;
        reset_ms.push(reset);
        step_ms.extend(steps);
    }
    let wall = started.elapsed();
    Ok((latency(reset_ms, wall), latency(step_ms, wall)))
}

impl std::fmt::Display for ServeBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "spar serve on loopback, project {}: {} sessions open at once over {} connections, \
             {} WebSocket episodes at once, {} sandbox workers",
            self.project, self.sessions, self.connections, self.ws_sessions, self.workers
        )?;
        writeln!(f, "| request | requests | requests/s | p50 ms | p99 ms |")?;
        writeln!(f, "| --- | --- | --- | --- | --- |")?;
        for (name, l) in [
            ("create session", &self.create),
            ("read_file step", &self.read_file),
            ("bash `grep -rn` step", &self.bash_grep),
            ("run step (test suite)", &self.test_run),
            ("/ws connect + reset", &self.ws_reset),
            ("/ws bash `grep -rn` step", &self.ws_bash_grep),
        ] {
            writeln!(
                f,
                "| {name} | {} | {:.1} | {:.2} | {:.2} |",
                l.requests, l.requests_per_s, l.p50_ms, l.p99_ms
            )?;
        }
        writeln!(f, "peak memory: {:.0} MiB", self.peak_rss_mib)
    }
}
