//! `spar serve`: spar's episodes as an HTTP/JSON environment server, so that RL frameworks and
//! LLM agents outside spar can play both SSR roles.
//!
//! A client creates a session (a solver attempt on a bug, or an injector episode in a
//! project), then sends one tool call per step and gets Gymnasium's `observation`, `reward`,
//! `terminated`, `truncated` and `info` back. Tool calls may be spar's own form or OpenAI
//! function calls, and a new session lists the tools as OpenAI function definitions. An
//! injector's `submit` answers with the validation report at once; its reward follows once
//! [`ServeSettings::attempts`] solver sessions on the new artifact have finished (poll or
//! long-poll `GET /v1/artifacts/{id}`). OpenEnv's `/reset`, `/step` and `/state` are the same
//! operations under OpenEnv's names. `openapi.json` (served at `/v1/openapi.json`) describes
//! every route.
//!
//! The long-lived objects (interpreter, validator and its memo, opened projects, the episode
//! log) are shared by every session; each session owns one environment. Steps run on the
//! blocking pool, at most [`ServeSettings::workers`] sandbox runs at once. Every finished
//! episode is appended to the JSONL log as it ends, so shutting down loses none.

pub mod bench;
pub mod client;
pub mod listen;
mod openenv;
pub mod pool;
pub mod route;

pub use listen::ConnectionSettings;

use crate::corpus::OpenProject;
use crate::episode::rewards::{injector_reward, solve_rate};
use crate::episode::tools::{definitions, parse_call, Profile};
use crate::episode::EpisodeRecord;
use crate::episode::{
    Action, Env, EnvSettings, EpisodeError, InjectorEnv, Observation, SolverEnv, Step, Task,
};
use crate::guest::Python;
use crate::protocol::export::SweBenchInstance;
use crate::protocol::validate::error_chain;
use crate::protocol::{ValidationReport, Validator};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// The API description, checked against the routes by the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route: method and path (axum's `{param}` syntax, as in [`OPENAPI`]).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions/{id}"),
    ("DELETE", "/v1/sessions/{id}"),
    ("POST", "/v1/sessions/{id}/step"),
    ("GET", "/v1/artifacts/{id}"),
    ("POST", "/reset"),
    ("POST", "/step"),
    ("GET", "/state"),
    ("GET", "/ws"),
    ("GET", "/health"),
    ("GET", "/schema"),
    ("GET", "/metadata"),
];

/// The longest an artifact long-poll may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Errors that stop the server (not a client's bad request: those are answers).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The episode log could not be opened.
    #[error("opening the episode log {path}")]
    Log {
        /// The JSONL episode log (`ServeSettings::log`) that could not be opened.
        path: PathBuf,
        /// The I/O error from creating its directory or opening it for appending.
        #[source]
        source: std::io::Error,
    },
}

/// What the server allows and where it writes.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    /// The bearer token every request but `/v1/health` and `/v1/openapi.json` must carry.
    pub token: String,
    /// Open sessions at most.
    pub max_sessions: usize,
    /// Request bodies at most this many bytes.
    pub max_body_bytes: usize,
    /// A session nobody stepped for this long is closed.
    pub idle_timeout: Duration,
    /// Budgets of every episode (`max_turns` is the per-session turn limit).
    pub env: EnvSettings,
    /// Finished solver sessions on an injected artifact that make its solve rate (the G of
    /// the protocol).
    pub attempts: usize,
    /// The tools of a session whose create request names none.
    pub tools: Profile,
    /// The bugs a reset that names none draws from (OpenEnv's seed-only reset).
    pub pool: pool::TaskPool,
    /// The injector reward's alpha.
    pub alpha: f64,
    /// Sandbox runs (a `run` or a grading) at once.
    pub workers: usize,
    /// Finished episodes, one JSON line each (the same records as `spar selfplay`).
    pub log: PathBuf,
    /// Where injected artifacts are written, one directory each.
    pub artifacts_dir: PathBuf,
    /// The listener's connection limit, read deadline and shutdown grace.
    pub connections: ConnectionSettings,
    /// This server's name in a cluster (`spar route`): it prefixes every session and artifact
    /// id (`NODE.ID`) so that a router finds the owner from the id alone, and a step that ends
    /// an episode carries its record (`"episode"`, marked by the [`EPISODE_HEADER`]) for the
    /// router's own log. `None` for a server on its own.
    pub node: Option<String>,
}

/// The response header that marks a step answer carrying its finished episode's record.
pub const EPISODE_HEADER: &str = "spar-episode";

/// Opens a corpus project by name, or says why not.
pub type ProjectResolver =
    Box<dyn Fn(&str) -> Result<OpenProject, crate::corpus::CorpusError> + Send + Sync>;

/// Runs at the start of every step, before the tool. Tests use it to provoke a failure inside
/// a step (no real input is known to panic); a panic here is handled like one in the tool.
pub type StepHook = Box<dyn Fn(&Action) + Send + Sync>;

/// The long-lived state every request shares.
pub struct Server {
    python: Arc<Python>,
    validator: Arc<Validator>,
    settings: ServeSettings,
    resolve: ProjectResolver,
    projects: Mutex<HashMap<String, Arc<OpenProject>>>,
    sessions: Mutex<HashMap<String, Arc<Mutex<Session>>>>,
    artifacts: Mutex<HashMap<String, Arc<ArtifactEntry>>>,
    sandbox: Arc<Semaphore>,
    log: Mutex<std::fs::File>,
    next_id: AtomicU64,
    nonce: u64,
    finished: AtomicU64,
    /// True once shutdown began: long-polls answer at once.
    stopping: watch::Sender<bool>,
    step_hook: OnceLock<StepHook>,
}

/// A new session's environment, the artifact its solves count towards, and its prompt.
type NewSession = (SessionEnv, Option<Arc<ArtifactEntry>>, Observation);

/// A session's environment: either role, behind the one [`Env`] shape.
enum SessionEnv {
    Solver(Box<SolverEnv>),
    Injector(Box<InjectorEnv>),
}

impl SessionEnv {
    fn step(&mut self, action: &Action) -> Result<Step, EpisodeError> {
        match self {
            SessionEnv::Solver(env) => env.step(action),
            SessionEnv::Injector(env) => env.step(action),
        }
    }

    fn role_and_state(&self) -> (&'static str, &crate::snapshot::Snapshot) {
        match self {
            SessionEnv::Solver(env) => ("solver", env.state()),
            SessionEnv::Injector(env) => ("injector", env.state()),
        }
    }

    /// The valid artifact an injector session submitted, once.
    fn take_injected(&mut self) -> Option<crate::episode::Injected> {
        match self {
            SessionEnv::Solver(_) => None,
            SessionEnv::Injector(env) => env.take_injected(),
        }
    }
}

struct Session {
    id: String,
    env: SessionEnv,
    /// The tools its steps call.
    tools: Profile,
    /// The artifact whose solve rate this solver session counts towards.
    counts_for: Option<Arc<ArtifactEntry>>,
    record: EpisodeRecord,
    started: Instant,
    last_used: Instant,
    done: bool,
    /// Why the session ended without the episode ending (spar failed on a step).
    failed: Option<String>,
}

/// An injected artifact and the solver attempts that make its reward.
struct ArtifactEntry {
    id: String,
    task: Arc<Task>,
    validation: ValidationReport,
    dir: PathBuf,
    /// The injector session that submitted it.
    injector: String,
    solved: Mutex<Vec<bool>>,
    changed: watch::Sender<usize>,
}

/// A client's mistake, answered with its status and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unknown_session(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown session {id:?}: it was closed, expired after idling, or never existed; \
                 create one with POST /v1/sessions"
            ),
        )
    }

    /// A read of a session while one of its steps runs.
    fn busy() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "a step of this session is running; ask again after its answer",
        )
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send `Authorization: Bearer TOKEN` with the token \
             spar serve (or spar route) printed or was given with --token; OpenEnv clients \
             that cannot send headers use the base URL http://HOST:PORT/t/TOKEN",
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Which role a new session plays and on what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// `solver` or `injector`.
    pub role: Role,
    /// Injector: the corpus project to put a bug in.
    #[serde(default)]
    pub project: Option<String>,
    /// Solver: an artifact directory on the server (as `spar inject` writes them).
    #[serde(default)]
    pub artifact: Option<PathBuf>,
    /// Solver: an artifact an injector session submitted to this server.
    #[serde(default)]
    pub artifact_id: Option<String>,
    /// Solver: a SWE-bench-style instance (a line of `spar export`), as an object or a string.
    #[serde(default)]
    pub instance: Option<Value>,
    /// The episode seed (the guest's clock and randomness).
    #[serde(default)]
    pub seed: u64,
    /// The tools the session gets (default: the server's `--tools`).
    #[serde(default)]
    pub tools: Option<Profile>,
}

impl CreateSession {
    /// How many of the solver's bug sources (artifact, artifact_id, instance) are given.
    fn bug_sources(&self) -> usize {
        [
            self.artifact.is_some(),
            self.artifact_id.is_some(),
            self.instance.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
    }
}

/// A session's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Repairs a bug from its specification.
    Solver,
    /// Writes a bug into a project.
    Injector,
}

#[derive(Deserialize)]
struct WaitQuery {
    #[serde(default)]
    wait: Option<f64>,
}

impl Server {
    /// Closes a session; whether its episode had finished, or `None` for an unknown session.
    /// Never waits for a running step (callers are async workers): a session mid-step is
    /// closed as not finished, and the step still answers its own request.
    fn close_session(&self, id: &str) -> Option<bool> {
        let session = lock(&self.sessions).remove(id)?;
        Some(try_session(&session).is_ok_and(|s| s.done))
    }

    /// The tool profile of a session.
    fn session_tools(&self, id: &str) -> Result<Profile, ApiError> {
        let session = self.session(id)?;
        let session = try_session(&session).map_err(|()| ApiError::busy())?;
        Ok(session.tools)
    }

    /// A server over one interpreter and validator; `resolve` opens projects by name.
    pub fn new(
        python: Arc<Python>,
        validator: Arc<Validator>,
        settings: ServeSettings,
        resolve: ProjectResolver,
    ) -> Result<Arc<Server>, ServeError> {
        let log = open_log(&settings.log)?;
        let nonce = crate::agents::Rng(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()),
        )
        .below(1 << 32) as u64;
        Ok(Arc::new(Server {
            python,
            validator,
            sandbox: Arc::new(Semaphore::new(settings.workers.max(1))),
            settings,
            resolve,
            projects: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            artifacts: Mutex::new(HashMap::new()),
            log,
            next_id: AtomicU64::new(1),
            nonce,
            finished: AtomicU64::new(0),
            stopping: watch::channel(false).0,
            step_hook: OnceLock::new(),
        }))
    }

    /// Installs `hook`, run at the start of every step (once; later calls are ignored).
    pub fn set_step_hook(&self, hook: StepHook) {
        let _ = self.step_hook.set(hook);
    }

    /// An id as clients see it: prefixed with the node's name in a cluster.
    fn public_id(&self, id: &str) -> String {
        match &self.settings.node {
            Some(node) => format!("{node}.{id}"),
            None => id.to_owned(),
        }
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Episodes finished (and logged) so far.
    pub fn finished_episodes(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// A project by its corpus name. Only plain names are looked up (a path could reach any
    /// directory of the host), and every failure gets the same answer: why it failed (which
    /// may name host paths) goes to the server's stderr, not to the client.
    fn project(&self, name: &str) -> Result<Arc<OpenProject>, ApiError> {
        if let Some(p) = lock(&self.projects).get(name) {
            return Ok(p.clone());
        }
        if !is_plain_name(name) {
            return Err(unknown_project(name));
        }
        let project = Arc::new((self.resolve)(name).map_err(|why| {
            eprintln!("spar serve: project {name:?} could not be opened: {why}");
            unknown_project(name)
        })?);
        lock(&self.projects).insert(name.to_owned(), project.clone());
        Ok(project)
    }

    /// Builds a session (blocking: opening a project or an artifact reads files).
    fn create(&self, mut request: CreateSession) -> Result<(Session, Observation), ApiError> {
        self.draw_from_pool(&mut request);
        let plain = format!(
            "s{:08x}{:06}",
            self.nonce,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let id = self.public_id(&plain);
        let now = Instant::now();
        let mut record = EpisodeRecord {
            episode: id.clone(),
            agent: "http".into(),
            seed: request.seed,
            ..EpisodeRecord::default()
        };
        let (env, counts_for, observation) = match request.role {
            // The artifact's id gets the node's prefix once, not again inside its name.
            Role::Injector => self.injector_session(&request, &plain, &mut record)?,
            Role::Solver => self.solver_session(&request, &mut record)?,
        };
        record.begin(&observation);
        let session = Session {
            id,
            env,
            tools: request.tools.unwrap_or(self.settings.tools),
            counts_for,
            record,
            started: now,
            last_used: now,
            done: false,
            failed: None,
        };
        Ok((session, observation))
    }

    /// An injector session's environment, in the train-split project the request names.
    fn injector_session(
        &self,
        request: &CreateSession,
        id: &str,
        record: &mut EpisodeRecord,
    ) -> Result<NewSession, ApiError> {
        if request.bug_sources() > 0 {
            return Err(ApiError::bad(
                "an injector session takes a project only (artifact, artifact_id and \
                 instance are for solver sessions)",
            ));
        }
        let name = request.project.as_deref().ok_or_else(|| {
            ApiError::bad("an injector session needs \"project\": a corpus project name")
        })?;
        let project = self.project(name)?;
        if project.split == crate::corpus::Split::Heldout {
            return Err(ApiError::bad(format!(
                "{name} is held out for evaluation: injector sessions use split = train \
                 projects, so held-out bugs stay unseen"
            )));
        }
        let env = self.settings.env.clone();
        let name = format!("http:{id}");
        let mut env = InjectorEnv::new(self.python.clone(), self.validator.clone(), env, &name);
        let observation = env.reset(project.clone(), request.seed);
        record.role = "injector".into();
        record.project = project.name.clone();
        Ok((SessionEnv::Injector(Box::new(env)), None, observation))
    }

    /// A solver session's environment, on the one bug the request gives.
    /// A solver request that names no bug gets one from the task pool, by its seed (a
    /// generic client's reset: a seed, or a dataset row of spar's fields).
    fn draw_from_pool(&self, request: &mut CreateSession) {
        if request.role != Role::Solver || request.bug_sources() > 0 || request.project.is_some() {
            return;
        }
        match self.settings.pool.draw(request.seed) {
            Some(pool::PoolTask::Artifact(dir)) => request.artifact = Some(dir.clone()),
            Some(pool::PoolTask::Instance(line)) => request.instance = Some(line.clone()),
            None => {}
        }
    }

    fn solver_session(
        &self,
        request: &CreateSession,
        record: &mut EpisodeRecord,
    ) -> Result<NewSession, ApiError> {
        if request.project.is_some() || request.bug_sources() != 1 {
            return Err(ApiError::bad(
                "a solver session needs exactly one bug: \"artifact\" (a directory \
                 `spar inject` wrote), \"artifact_id\" (one an injector session \
                 submitted here) or \"instance\" (a line of `spar export`); with none, it \
                 draws one by seed from the task pool of spar serve --tasks",
            ));
        }
        let (task, counts_for) = self.solver_task(request)?;
        let env = self.settings.env.clone();
        let mut env = SolverEnv::new(self.python.clone(), self.validator.clone(), env);
        let observation = env.reset(task.clone(), request.seed);
        record.role = "solver".into();
        record.task = task.id.clone();
        record.project = task.project.clone();
        record.order = task.order;
        Ok((SessionEnv::Solver(Box::new(env)), counts_for, observation))
    }

    fn solver_task(
        &self,
        request: &CreateSession,
    ) -> Result<(Arc<Task>, Option<Arc<ArtifactEntry>>), ApiError> {
        if let Some(id) = &request.artifact_id {
            let entry = lock(&self.artifacts).get(id).cloned().ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "unknown artifact {id:?}: artifact_id names a valid artifact an injector \
                         session submitted to this server"
                    ),
                )
            })?;
            return Ok((entry.task.clone(), Some(entry)));
        }
        if let Some(dir) = &request.artifact {
            // One answer whether the path is missing, unreadable or not an artifact, so that
            // clients cannot probe the host's file system; the details go to stderr.
            let unreadable = |why: String| {
                eprintln!("spar serve: artifact {}: {why}", dir.display());
                ApiError::bad(NO_ARTIFACT)
            };
            let artifact =
                crate::protocol::BugArtifact::load(dir).map_err(|e| unreadable(error_chain(&e)))?;
            let project = self.project(&artifact.meta.project)?;
            let task = Task::load(dir, &project).map_err(|e| unreadable(error_chain(&e)))?;
            return Ok((Arc::new(task), None));
        }
        let value = request.instance.clone().unwrap_or_default();
        let value = match value {
            Value::String(line) => serde_json::from_str(&line)
                .map_err(|e| ApiError::bad(format!("instance is not JSON: {e}")))?,
            other => other,
        };
        let instance: SweBenchInstance = serde_json::from_value(value)
            .map_err(|e| ApiError::bad(format!("instance is not a `spar export` line: {e}")))?;
        let project = self.project(&instance.repo)?;
        let task =
            Task::from_instance(&instance, &project).map_err(|e| ApiError::bad(error_chain(&e)))?;
        Ok((Arc::new(task), None))
    }

    /// One tool call on a session (blocking: runs may take seconds).
    fn step(&self, session: &mut Session, action: Action) -> Result<Value, ApiError> {
        if session.done {
            let why = match &session.failed {
                Some(failure) => format!(" because spar failed on a step ({failure})"),
                None => String::new(),
            };
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "session {} has ended{why}; close it (DELETE /v1/sessions/{}) and create \
                     another",
                    session.id, session.id
                ),
            ));
        }
        session.last_used = Instant::now();
        if let Some(hook) = self.step_hook.get() {
            hook(&action);
        }
        let runs = action.may_run_sandbox();
        // Cheap tools never wait behind sandbox runs.
        let _permit = if runs {
            Some(
                tokio::runtime::Handle::current()
                    .block_on(self.sandbox.clone().acquire_owned())
                    .map_err(|_| ApiError::internal("the server is shutting down"))?,
            )
        } else {
            None
        };
        let step = session.env.step(&action).map_err(|e| {
            // A harness failure ends the episode: it cannot be graded fairly any more.
            let why = error_chain(&e);
            session.done = true;
            session.failed = Some(format!("the sandbox failed: {why}"));
            ApiError::internal(format!(
                "the sandbox failed on this step; the session has ended: {why}"
            ))
        })?;
        session.last_used = Instant::now();
        let record = &mut session.record;
        let ended = record.push(action, &step);
        let mut answer =
            serde_json::to_value(&step).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(injected) = session.env.take_injected() {
            let entry = self.register(&session.id, injected)?;
            record.task = entry.id.clone();
            answer["artifact"] = artifact_json(&entry);
        } else if matches!(session.env, SessionEnv::Injector(_)) && step.terminated {
            answer["artifact"] = json!({ "valid": false, "reason": step.observation.text });
        }
        if ended {
            session.done = true;
            record.wall_ms = session.started.elapsed().as_secs_f64() * 1e3;
            self.write_record(record)?;
            if self.settings.node.is_some() {
                answer["episode"] = serde_json::to_value(&*record)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            if let Some(entry) = &session.counts_for {
                let mut solved = lock(&entry.solved);
                solved.push(record.solved);
                entry.changed.send_replace(solved.len());
            }
        }
        Ok(answer)
    }

    fn register(
        &self,
        injector: &str,
        injected: crate::episode::Injected,
    ) -> Result<Arc<ArtifactEntry>, ApiError> {
        let plain = injected.artifact.id();
        let id = self.public_id(&plain);
        if let Some(existing) = lock(&self.artifacts).get(&id) {
            return Ok(existing.clone());
        }
        let dir = self.settings.artifacts_dir.join(&plain);
        crate::inject::write_artifact(&injected.artifact, &injected.validation, &dir).map_err(
            |e| ApiError::internal(format!("writing the artifact: {}", error_chain(&e))),
        )?;
        let project = self.project(&injected.artifact.meta.project)?;
        let task = Task::from_artifact(
            &injected.artifact,
            &injected.validation,
            project.repo.clone(),
            project.run.clone(),
        )
        .map_err(|e| ApiError::internal(error_chain(&e)))?;
        let entry = Arc::new(ArtifactEntry {
            id: id.clone(),
            task: Arc::new(task),
            validation: injected.validation,
            dir,
            injector: injector.to_owned(),
            solved: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        });
        lock(&self.artifacts).insert(id, entry.clone());
        Ok(entry)
    }

    fn write_record(&self, record: &EpisodeRecord) -> Result<(), ApiError> {
        let line = serde_json::to_string(record).map_err(|e| ApiError::internal(e.to_string()))?;
        append_line(&self.log, line)
            .map_err(|e| ApiError::internal(format!("writing the episode log: {e}")))?;
        self.finished.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Arc<Mutex<Session>>, ApiError> {
        lock(&self.sessions)
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::unknown_session(id))
    }

    fn artifact_status(&self, entry: &ArtifactEntry) -> Value {
        let mut status = artifact_json(entry);
        let solved = lock(&entry.solved).clone();
        let needed = self.settings.attempts.max(1);
        let counted = &solved[..solved.len().min(needed)];
        status["attempts_needed"] = json!(needed);
        status["attempts_done"] = json!(counted.len());
        let complete = counted.len() >= needed;
        status["complete"] = json!(complete);
        status["solve_rate"] = if counted.is_empty() {
            Value::Null
        } else {
            json!(solve_rate(counted))
        };
        status["injector_reward"] = if complete {
            json!(injector_reward(
                true,
                solve_rate(counted),
                self.settings.alpha
            ))
        } else {
            Value::Null
        };
        status
    }

    /// Closes sessions idle longer than the limit; returns how many.
    pub fn expire_idle(&self) -> usize {
        let limit = self.settings.idle_timeout;
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        // A session whose lock is held is mid-step: not idle.
        sessions.retain(|_, s| match try_session(s) {
            Ok(s) => s.last_used.elapsed() < limit,
            Err(_) => true,
        });
        before - sessions.len()
    }
}

fn artifact_json(entry: &ArtifactEntry) -> Value {
    json!({
        "id": entry.id,
        "valid": true,
        "injector_session": entry.injector,
        "dir": entry.dir,
        "fail_to_pass": entry.validation.fail_to_pass,
        "pass_to_pass": entry.validation.pass_to_pass,
        "validation": entry.validation,
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session's lock, or `None` while a step of it runs. A lock poisoned by a panic is taken
/// all the same: steps catch their panics and end the session, so its state is consistent.
fn try_session(session: &Mutex<Session>) -> Result<MutexGuard<'_, Session>, ()> {
    match session.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => Err(()),
    }
}

/// What a client hears for any `"artifact"` path the server cannot use.
const NO_ARTIFACT: &str = "artifact: the server has no bug artifact it can read at that path; \
    give a directory `spar inject` wrote on the server, or use artifact_id or instance";

/// A corpus project name the store would accept (no path separators, no leading dot), of a
/// length fit to look up.
fn is_plain_name(name: &str) -> bool {
    name.len() <= 128 && crate::corpus::valid_name(name)
}

fn unknown_project(name: &str) -> ApiError {
    let shown: String = name.chars().take(128).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "unknown project {shown:?}: name a project of this server's corpus (`spar corpus \
             list` on the server lists them)"
        ),
    )
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(body_rejection)?;
    if body.is_empty() {
        return Err(ApiError::bad("the request needs a JSON body"));
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("malformed request JSON: {e}")))
}

/// The routes, with authentication, limits and JSON errors.
pub fn router(server: Arc<Server>) -> Router {
    let limit = server.settings.max_body_bytes;
    let authenticated = Router::new()
        .route("/v1/sessions", post(create_session))
        .route(
            "/v1/sessions/{id}",
            get(session_state).delete(close_session),
        )
        .route("/v1/sessions/{id}/step", post(step_session))
        .route("/v1/artifacts/{id}", get(artifact))
        .merge(openenv::routes())
        .nest("/t/{token}", openenv::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            server.clone(),
            read_body,
        ))
        // Added last, so it runs first: nobody unauthenticated gets a body read.
        .route_layer(axum::middleware::from_fn_with_state(
            server.clone(),
            authorize,
        ));
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .merge(openenv::public_routes())
        .nest("/t/{token}", openenv::public_routes())
        .merge(authenticated)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(server)
}

async fn authorize(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = given_token(&request);
    if !token_matches(given.as_deref(), &server.settings.token) {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

/// The token a request carries: `Authorization: Bearer TOKEN`, or the path prefix `/t/TOKEN`
/// for OpenEnv clients that cannot send headers.
fn given_token(request: &Request) -> Option<String> {
    let in_path = request
        .uri()
        .path()
        .strip_prefix("/t/")
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or(in_path)
}

/// Whether `given` is `expected`, compared in constant time: the token is the only thing
/// between the sandbox and the LAN.
fn token_matches(given: Option<&str>, expected: &str) -> bool {
    let expected = expected.as_bytes();
    given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// Reads the whole request body within the read deadline, so that a client that sends its
/// header and then trickles (or withholds) the body cannot hold a connection and a handler
/// forever; the handlers then find it in memory. Too large a body is a 413 as before.
async fn read_body(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequest;
    let timeout = server.settings.connections.read_timeout;
    let (parts, body) = request.into_parts();
    let reading = Bytes::from_request(Request::from_parts(parts.clone(), body), &());
    let body = tokio::time::timeout(timeout, reading).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:.0?} of its header (spar serve \
                 --read-timeout); send the body with the header",
                timeout
            ),
        )
    })?;
    let body = body.map_err(body_rejection)?;
    Ok(next
        .run(Request::from_parts(parts, axum::body::Body::from(body)))
        .await)
}

fn body_rejection(e: BytesRejection) -> ApiError {
    ApiError::new(
        e.status(),
        format!(
            "{} (the body limit is set by spar serve --max-body-bytes)",
            e.body_text()
        ),
    )
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route {method} {uri}; the routes are in GET /v1/openapi.json"),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{uri} does not take {method}; the routes are in GET /v1/openapi.json"),
    )
}

async fn health(State(server): State<Arc<Server>>) -> Json<Value> {
    let workers = server.settings.workers.max(1);
    Json(json!({
        "status": "ok",
        "node": server.settings.node,
        "sessions": server.open_sessions(),
        "workers": workers,
        "busy_workers": workers.saturating_sub(server.sandbox.available_permits()),
        "finished_episodes": server.finished_episodes(),
    }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Runs blocking work on the blocking pool; a panic there is a 500, never a dead server.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the step failed inside spar: {e}")))?
}

async fn create(server: Arc<Server>, request: CreateSession) -> Result<Value, ApiError> {
    let max = server.settings.max_sessions;
    if server.open_sessions() >= max {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the server holds its maximum of {max} sessions; close finished ones (DELETE \
                 /v1/sessions/ID) or start spar serve with a larger --max-sessions"
            ),
        ));
    }
    let role = request.role;
    let s = server.clone();
    let (session, observation) = blocking(move || s.create(request)).await?;
    let tools = session.tools;
    let id = session.id.clone();
    let task = session.record.task.clone();
    let project = session.record.project.clone();
    {
        let mut sessions = lock(&server.sessions);
        if sessions.len() >= max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("the server holds its maximum of {max} sessions; close some first"),
            ));
        }
        sessions.insert(id.clone(), Arc::new(Mutex::new(session)));
    }
    Ok(json!({
        "session_id": id,
        "role": role,
        "project": project,
        "task": if task.is_empty() { Value::Null } else { json!(task) },
        "observation": observation,
        "tools": definitions(tools),
        "max_turns": server.settings.env.max_turns,
    }))
}

async fn create_session(
    State(server): State<Arc<Server>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let answer = create(server, parse(body)?).await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn step(server: Arc<Server>, id: String, call: Value) -> Result<Value, ApiError> {
    let session = server.session(&id)?;
    let s = server.clone();
    blocking(move || {
        let mut session = try_session(&session).map_err(|()| {
            ApiError::new(
                StatusCode::CONFLICT,
                "a step of this session is still running: send the next one after its answer",
            )
        })?;
        let action = parse_call(session.tools, &call).map_err(|e| ApiError::bad(e.to_string()))?;
        s.step_catching_panics(&mut session, action)
    })
    .await
}

impl Server {
    /// [`Server::step`], with a panic inside it (a bug in spar) ending the session cleanly:
    /// the client gets a 500 that says so, the session's lock is released unpoisoned, later
    /// steps get a 409 naming the failure, and the session can be read and closed as usual.
    /// It is not kept going: a half-done step may have left its environment inconsistent.
    fn step_catching_panics(
        &self,
        session: &mut Session,
        action: Action,
    ) -> Result<Value, ApiError> {
        let stepping = std::panic::AssertUnwindSafe(|| self.step(session, action));
        std::panic::catch_unwind(stepping).unwrap_or_else(|payload| {
            let why = panic_message(payload.as_ref());
            session.done = true;
            session.failed = Some(format!("spar panicked: {why}"));
            Err(ApiError::internal(format!(
                "the step failed inside spar (a bug in spar; please report it): {why}; the \
                 session has ended: close it (DELETE /v1/sessions/{}) and create another",
                session.id
            )))
        })
    }
}

async fn step_session(
    State(server): State<Arc<Server>>,
    UrlPath(id): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Ok(step_response(step(server, id, parse(body)?).await?))
}

/// A step's answer, marked with the [`EPISODE_HEADER`] when it carries its episode's record.
fn step_response(answer: Value) -> Response {
    let ended = answer.get("episode").is_some();
    let mut response = Json(answer).into_response();
    if ended {
        let mark = header::HeaderValue::from_static("end");
        response.headers_mut().insert(EPISODE_HEADER, mark);
    }
    response
}

fn state(server: &Server, id: &str) -> Result<Value, ApiError> {
    let session = server.session(id)?;
    let session = try_session(&session).map_err(|()| ApiError::busy())?;
    let (role, repo) = session.env.role_and_state();
    Ok(json!({
        "session_id": session.id,
        "role": role,
        "project": session.record.project,
        "task": session.record.task,
        "seed": session.record.seed,
        "turn": session.record.actions.len(),
        "max_turns": server.settings.env.max_turns,
        "done": session.done,
        "failed": session.failed,
        "reward": session.record.reward,
        "solved": session.record.solved,
        "terminated": session.record.terminated,
        "truncated": session.record.truncated,
        "idle_s": session.last_used.elapsed().as_secs_f64(),
        "state_hash": repo.content_hash(),
    }))
}

async fn session_state(
    State(server): State<Arc<Server>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state(&server, &id)?))
}

async fn close_session(
    State(server): State<Arc<Server>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let done = server
        .close_session(&id)
        .ok_or_else(|| ApiError::unknown_session(&id))?;
    Ok(Json(
        json!({ "session_id": id, "closed": true, "finished": done }),
    ))
}

async fn artifact(
    State(server): State<Arc<Server>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad(format!("{e}: wait is seconds, e.g. ?wait=30")))?;
    let entry = lock(&server.artifacts).get(&id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown artifact {id:?}: artifacts are made by injector sessions' submit"),
        )
    })?;
    let wait = query.wait.unwrap_or(0.0);
    if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&wait) {
        return Err(ApiError::bad(format!(
            "wait must be between 0 and {} seconds",
            MAX_WAIT.as_secs()
        )));
    }
    let needed = server.settings.attempts.max(1);
    let mut changes = entry.changed.subscribe();
    let mut stopping = server.stopping.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    // A shutdown answers long-polls at once: they must not hold it for a minute.
    while *changes.borrow_and_update() < needed && !*stopping.borrow_and_update() {
        let woke = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                changed = changes.changed() => changed.is_ok(),
                _ = stopping.changed() => true,
            }
        });
        if !matches!(woke.await, Ok(true)) {
            break;
        }
    }
    Ok(Json(server.artifact_status(&entry)))
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections, answers pending long-polls, gives the requests in flight
/// [`ConnectionSettings::shutdown_grace`] to finish (their episodes are logged as they end) and
/// returns; steps still running then finish on the blocking pool unanswered. Idle sessions
/// expire meanwhile. Connections are limited and timed as [`listen`] describes. Accept errors
/// (such as running out of file descriptors) are waited out, not returned.
pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let sweeper = {
        let server = server.clone();
        let every = (server.settings.idle_timeout / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                server.expire_idle();
            }
        })
    };
    let stopping = server.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    let connections = server.settings.connections.clone();
    listen::run(listener, router(server), &connections, shutdown).await;
    sweeper.abort();
    Ok(())
}

/// An episode log opened for appending, its directory made first.
fn open_log(path: &Path) -> Result<Mutex<std::fs::File>, ServeError> {
    let log_error = |source| ServeError::Log {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(log_error)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(log_error)?;
    Ok(Mutex::new(log))
}

/// Appends `line` and a newline to an episode log in one write, so that a process stopped
/// mid-way leaves no half line.
fn append_line(log: &Mutex<std::fs::File>, mut line: String) -> std::io::Result<()> {
    line.push('\n');
    let mut log = lock(log);
    log.write_all(line.as_bytes()).and_then(|()| log.flush())
}

/// A name [`ServeSettings::node`] accepts: 1 to 16 ASCII letters or digits, so that
/// `NODE.ID` splits at its first dot and stays a plain URL path segment.
pub fn valid_node_name(name: &str) -> bool {
    (1..=16).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh random token (128 bits, hex).
pub fn new_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default log and artifact locations under `dir`.
pub fn default_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("episodes.jsonl"), dir.join("artifacts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
