//! `spar route`: one address in front of many `spar serve` nodes, speaking the same API, so a
//! client written for one server scales out unchanged.
//!
//! Every node runs `spar serve --node-id NAME`, which prefixes its session and artifact ids
//! with `NAME.`. A later request on a session or an artifact goes to the node its id names:
//! sticky routing with no table on the hot path. Solver sessions on an injector's
//! `artifact_id` run on the node that holds the artifact, so its solve rate, and the injector's
//! reward, are collected there exactly as on one machine. New sessions go to the live node with
//! the least load per worker: open sessions and busy workers from each node's `/v1/health`
//! (polled), plus the sessions placed that the last poll could not have counted yet. Nodes join and leave at run time
//! (`PUT` / `DELETE /v1/nodes/{name}`); `spar_client.ray` registers each node actor's server.
//!
//! A node that stops answering is marked down: new sessions avoid it, and requests on its
//! sessions get 410 Gone, saying the session was lost with its node (clients do not retry
//! a 410). A step that ends an episode carries the episode's record from its node; the router
//! appends it to its own `episodes.jsonl` before it answers, so every episode a client saw
//! finish is in the router's log even if its node dies a moment later.

use super::{
    body_rejection, given_token, lock, token_matches, valid_node_name, ApiError,
    ConnectionSettings, ServeError, EPISODE_HEADER, OPENAPI,
};
use crate::protocol::validate::error_chain;
pub mod bench;
mod ws;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What the router allows and where it writes.
#[derive(Clone, Debug)]
pub struct RouteSettings {
    /// The bearer token clients (and node registration) must carry; each node has its own.
    pub token: String,
    /// Every episode that finished through the router, one JSON line each (the nodes' records).
    pub log: PathBuf,
    /// How often each node's `/v1/health` is read (load for placement; liveness).
    pub health_interval: Duration,
    /// Request bodies at most this many bytes.
    pub max_body_bytes: usize,
    /// The listener's connection limit, read deadline and shutdown grace.
    pub connections: ConnectionSettings,
}

/// The longest a node's health check or a liveness probe may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pooled connections to a node are dropped after this long idle: shorter than a node's
/// default read deadline (10 s), so the router never reuses one the node has just closed.
const POOL_IDLE: Duration = Duration::from_secs(5);

/// One `spar serve --node-id NAME` behind the router, with the load it last reported.
struct Node {
    name: String,
    /// `http://HOST:PORT`, without a trailing slash.
    base: String,
    /// `Bearer TOKEN` with the node's own token.
    auth: HeaderValue,
    alive: AtomicBool,
    /// Why it is down, once it is.
    down: Mutex<Option<String>>,
    sessions: AtomicUsize,
    /// Sessions placed on it so far (never decreases).
    placed: AtomicUsize,
    /// Of those, the ones whose placing request had been answered (never decreases): once a
    /// node answered a create, its own session count includes that session.
    settled: AtomicUsize,
    /// `settled` as it was when the last health answer used was asked for: placements beyond
    /// it are not in `sessions` yet. A count taken when the answer arrives would drop
    /// sessions created while the health request was on its way.
    reflected: AtomicUsize,
    workers: AtomicUsize,
    busy: AtomicUsize,
    /// Requests the router is forwarding to it now.
    inflight: AtomicUsize,
}

impl Node {
    /// A node as registered (not checked yet: down until it is).
    fn new(name: &str, registration: &NodeRegistration) -> Result<Node, ApiError> {
        if !valid_node_name(name) {
            return Err(ApiError::bad(
                "a node name is 1 to 16 ASCII letters or digits, as given to spar serve --node-id",
            ));
        }
        let base = registration.url.trim_end_matches('/').to_owned();
        let authority = base.strip_prefix("http://").unwrap_or("");
        if authority.is_empty() || authority.contains('/') || base.parse::<Uri>().is_err() {
            return Err(ApiError::bad(format!(
                "node url {:?} is not http://HOST:PORT (the address spar serve printed)",
                registration.url
            )));
        }
        let auth = HeaderValue::from_str(&format!("Bearer {}", registration.token))
            .map_err(|_| ApiError::bad("the node token has characters a header cannot carry"))?;
        Ok(Node {
            name: name.to_owned(),
            base,
            auth,
            alive: AtomicBool::new(false),
            down: Mutex::new(Some("not checked yet".into())),
            sessions: AtomicUsize::new(0),
            placed: AtomicUsize::new(0),
            settled: AtomicUsize::new(0),
            reflected: AtomicUsize::new(0),
            workers: AtomicUsize::new(1),
            busy: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
        })
    }

    /// Load per worker: what placement minimises. Open sessions (as last polled, plus those
    /// placed that the poll could not see) say what will run there; the requests the router
    /// has in flight there now (test runs, mostly) say what runs there at this moment, without
    /// waiting for a poll.
    fn load(&self) -> f64 {
        let placed = self.placed.load(Ordering::Relaxed);
        let unseen = placed.saturating_sub(self.reflected.load(Ordering::Relaxed));
        let sessions = self.sessions.load(Ordering::Relaxed) + unseen;
        let running = self.inflight.load(Ordering::Relaxed);
        (sessions + running) as f64 / self.workers.load(Ordering::Relaxed).max(1) as f64
    }

    fn mark_down(&self, why: String) {
        if self.alive.swap(false, Ordering::Relaxed) {
            eprintln!("spar route: node {} is down: {why}", self.name);
        }
        *lock(&self.down) = Some(why);
    }

    fn view(&self) -> Value {
        json!({
            "name": self.name,
            "alive": self.alive.load(Ordering::Relaxed),
            "down": *lock(&self.down),
            "sessions": self.sessions.load(Ordering::Relaxed),
            "workers": self.workers.load(Ordering::Relaxed),
            "busy_workers": self.busy.load(Ordering::Relaxed),
            "inflight": self.inflight.load(Ordering::Relaxed),
        })
    }
}

/// Counts a request in flight to a node for as long as it lives.
struct Inflight(Arc<Node>);

impl Inflight {
    fn new(node: &Arc<Node>) -> Self {
        node.inflight.fetch_add(1, Ordering::Relaxed);
        Inflight(node.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The router's long-lived state: the nodes, one pooled HTTP client, the episode log.
pub struct Route {
    settings: RouteSettings,
    nodes: RwLock<BTreeMap<String, Arc<Node>>>,
    client: Client<HttpConnector, Body>,
    log: Mutex<std::fs::File>,
    finished: AtomicU64,
}

/// A node registration: where its server listens and its token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// `http://HOST:PORT` of the node's `spar serve --node-id NAME`.
    pub url: String,
    /// The node's bearer token.
    pub token: String,
}

impl Route {
    /// A router with no nodes yet, its episode log opened for appending.
    pub fn new(settings: RouteSettings) -> Result<Arc<Route>, ServeError> {
        let log = super::open_log(&settings.log)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(PROBE_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(4096)
            .build(connector);
        Ok(Arc::new(Route {
            settings,
            nodes: RwLock::new(BTreeMap::new()),
            client,
            log,
            finished: AtomicU64::new(0),
        }))
    }

    /// Adds (or replaces: a restarted node) a node after checking that it answers as `name`
    /// and takes its token.
    pub async fn add_node(&self, name: &str, node: NodeRegistration) -> Result<(), ApiError> {
        let node = Arc::new(Node::new(name, &node)?);
        let health = self.health_of(&node).await.map_err(|why| {
            ApiError::bad(format!(
                "node {name} at {} does not answer: {why}",
                node.base
            ))
        })?;
        self.verify(&node, &health).await?;
        self.insert(node);
        Ok(())
    }

    /// Nodes known before the router listens (`spar route --nodes FILE`, or a restarted
    /// router's): each is checked as a registration is, except that one that does not answer
    /// yet is kept, down, for the health checks to bring up when it does.
    pub async fn add_known_nodes(
        &self,
        nodes: BTreeMap<String, NodeRegistration>,
    ) -> Result<(), ApiError> {
        for (name, registration) in nodes {
            let node = Arc::new(Node::new(&name, &registration)?);
            match self.health_of(&node).await {
                Ok(health) => self.verify(&node, &health).await?,
                Err(why) => {
                    eprintln!("spar route: node {name} does not answer yet ({why}); kept, down");
                    node.mark_down(why);
                }
            }
            self.insert(node);
        }
        Ok(())
    }

    fn insert(&self, node: Arc<Node>) {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        nodes.insert(node.name.clone(), node);
    }

    /// Checks that the server answering `health` is the node it is registered as and takes
    /// the token it was registered with; then takes its load.
    async fn verify(&self, node: &Arc<Node>, health: &Health) -> Result<(), ApiError> {
        if health.report["node"] != json!(node.name) {
            return Err(ApiError::bad(format!(
                "the server at {} calls itself {}, not {:?}: start it with spar serve \
                 --node-id {}",
                node.base, health.report["node"], node.name, node.name
            )));
        }
        self.check_token(node).await?;
        self.update(node, health);
        Ok(())
    }

    /// Refuses a registration whose token the node does not take (health is public, so the
    /// health check alone would accept any token).
    async fn check_token(&self, node: &Arc<Node>) -> Result<(), ApiError> {
        let probe = format!("/v1/sessions/{}.token-check", node.name);
        let answer = self.forward(node, Method::GET, &probe, Bytes::new()).await;
        match answer.map(|r| r.status()) {
            Ok(StatusCode::UNAUTHORIZED) => Err(ApiError::bad(format!(
                "node {} at {} refuses that token: give the token its spar serve printed",
                node.name, node.base
            ))),
            Ok(_) => Ok(()),
            Err(_) => Err(ApiError::bad(format!(
                "node {} at {} stopped answering while it was registered",
                node.name, node.base
            ))),
        }
    }

    /// Forgets a node (its sessions then get 404); whether it was known.
    pub fn remove_node(&self, name: &str) -> bool {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        nodes.remove(name).is_some()
    }

    fn node(&self, name: &str) -> Option<Arc<Node>> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.get(name).cloned()
    }

    fn all_nodes(&self) -> Vec<Arc<Node>> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.values().cloned().collect()
    }

    /// The node that owns an id (`NODE.ID`), or a 404 that says which part was wrong.
    fn owner(&self, id: &str, what: &str) -> Result<Arc<Node>, ApiError> {
        let name = id.split_once('.').map(|(name, _)| name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown {what} {id:?}: ids behind spar route start with their node's name \
                     (NODE.ID), as the router's answers give them"
                ),
            )
        })?;
        self.node(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown {what} {id:?}: node {name:?} is not (or no longer) in this cluster"
                ),
            )
        })
    }

    /// The live node with the least load, counted as placed on until the placement is
    /// dropped and a later health answer includes it; 503 when none is live.
    fn place(&self, except: &[String]) -> Result<Placement, ApiError> {
        Ok(Placement::on(self.least_loaded(except)?))
    }

    /// The live node with the least load (not among `except`); 503 when none is live.
    fn least_loaded(&self, except: &[String]) -> Result<Arc<Node>, ApiError> {
        self.all_nodes()
            .into_iter()
            .filter(|n| n.alive.load(Ordering::Relaxed) && !except.contains(&n.name))
            .min_by(|a, b| a.load().total_cmp(&b.load()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no live spar serve node behind this router: start nodes and register them \
                     (PUT /v1/nodes/NAME), or wait for a restarting one",
                )
            })
    }

    /// A node's `/v1/health` answer, or why there is none.
    async fn health_of(&self, node: &Node) -> Result<Health, String> {
        let settled_before = node.settled.load(Ordering::Relaxed);
        let request = hyper::Request::get(format!("{}/v1/health", node.base))
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            if !response.status().is_success() {
                return Err(format!("/v1/health answered {}", response.status()));
            }
            let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
                .await
                .map_err(|e| e.to_string())?;
            let report = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            Ok(Health {
                report,
                settled_before,
            })
        });
        answer
            .await
            .unwrap_or_else(|_| Err(format!("no health answer within {PROBE_TIMEOUT:?}")))
    }

    fn update(&self, node: &Node, health: &Health) {
        let count = |key: &str| health.report[key].as_u64().unwrap_or(0) as usize;
        node.sessions.store(count("sessions"), Ordering::Relaxed);
        node.workers
            .store(count("workers").max(1), Ordering::Relaxed);
        node.busy.store(count("busy_workers"), Ordering::Relaxed);
        node.reflected
            .fetch_max(health.settled_before, Ordering::Relaxed);
        *lock(&node.down) = None;
        if !node.alive.swap(true, Ordering::Relaxed) {
            eprintln!("spar route: node {} is up at {}", node.name, node.base);
        }
    }

    /// Reads every node's health once, all at once.
    pub async fn check_nodes(self: &Arc<Self>) {
        let checks = self.all_nodes().into_iter().map(|node| {
            let route = self.clone();
            tokio::spawn(async move {
                match route.health_of(&node).await {
                    Ok(health) => route.update(&node, &health),
                    Err(why) => node.mark_down(why),
                }
            })
        });
        for check in checks.collect::<Vec<_>>() {
            let _ = check.await;
        }
    }

    /// Sends a request to `node` with the node's token and answers with the node's answer; an
    /// answer that carries a finished episode is logged here first (without the record).
    async fn forward(
        &self,
        node: &Arc<Node>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Response, Forward> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", node.base))
            .header(header::AUTHORIZATION, node.auth.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| Forward::Refused(ApiError::bad(format!("the request: {e}"))))?;
        let _inflight = Inflight::new(node);
        let response = self.client.request(request).await.map_err(|e| {
            let why = error_chain(&e);
            match e.is_connect() {
                true => Forward::Unreachable(why),
                false => Forward::Broken(why),
            }
        })?;
        let (parts, incoming) = response.into_parts();
        if !parts.headers.contains_key(EPISODE_HEADER) {
            return Ok(Response::from_parts(parts, Body::new(incoming)));
        }
        let bytes = axum::body::to_bytes(Body::new(incoming), usize::MAX)
            .await
            .map_err(|e| Forward::Broken(e.to_string()))?;
        let mut answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Forward::Broken(format!("the node's answer is not JSON: {e}")))?;
        if let Some(episode) = answer.as_object_mut().and_then(|a| a.remove("episode")) {
            self.append(&node.name, &episode);
        }
        Ok((parts.status, Json(answer)).into_response())
    }

    /// A node's WebSocket frame as the client gets it: a finished episode's record (in
    /// `data.episode`) is logged here and taken out.
    fn strip_episode(&self, text: &str) -> String {
        if !text.contains("\"episode\"") {
            return text.to_owned();
        }
        let Ok(mut frame) = serde_json::from_str::<Value>(text) else {
            return text.to_owned();
        };
        let episode = frame["data"]
            .as_object_mut()
            .and_then(|d| d.remove("episode"));
        match episode {
            Some(episode) => {
                let node = episode["episode"].as_str().unwrap_or_default();
                let node = node.split('.').next().unwrap_or_default().to_owned();
                self.append(&node, &episode);
                frame.to_string()
            }
            None => text.to_owned(),
        }
    }

    fn append(&self, node: &str, episode: &Value) {
        match super::append_line(&self.log, episode.to_string()) {
            Ok(()) => {
                self.finished.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => eprintln!(
                "spar route: writing {}: {e}; the episode is still in node {node}'s own log",
                self.settings.log.display()
            ),
        }
    }

    /// Forwards to the owner of a session or artifact; a dead owner is a 410.
    async fn sticky(
        &self,
        node: &Arc<Node>,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        match self.forward(node, method, path, body).await {
            Ok(response) => Ok(response),
            Err(Forward::Refused(e)) => Err(e),
            Err(Forward::Unreachable(why)) => {
                node.mark_down(why);
                Err(gone(node))
            }
            Err(Forward::Broken(why)) => Err(self.broken(node, why).await),
        }
    }

    /// Whether a node whose connection broke after a request was sent is dead (then marked
    /// down), rather than only that connection.
    async fn died(&self, node: &Node) -> bool {
        match self.health_of(node).await {
            Err(why) => {
                node.mark_down(why);
                true
            }
            Ok(_) => false,
        }
    }

    /// The answer for a connection that broke after the request was sent: the node died (410),
    /// or only the connection did (500: the request may have run, so it is not retried).
    async fn broken(&self, node: &Arc<Node>, why: String) -> ApiError {
        match self.died(node).await {
            true => gone(node),
            false => connection_broke(node, &why),
        }
    }

    /// A new session (spar's create or OpenEnv's reset): on the artifact's node when the body
    /// names an `artifact_id`, else on the least-loaded live node; on another one if that node
    /// turns out to be dead (a session it may have made died with it).
    async fn create(&self, path: &str, body: Bytes) -> Result<Response, ApiError> {
        let fields: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad(format!("malformed request JSON: {e}")))?
        };
        if fields.get("artifact").is_some_and(|a| !a.is_null()) {
            return Err(ApiError::bad(
                "\"artifact\" is a directory on one machine's disk, which the nodes behind \
                 spar route do not share: give \"artifact_id\" (from an injector session here) \
                 or \"instance\" (a line of spar export)",
            ));
        }
        if let Some(id) = fields.get("artifact_id").and_then(Value::as_str) {
            let placement = Placement::on(self.owner(id, "artifact")?);
            return self.sticky(&placement.node, Method::POST, path, body).await;
        }
        let mut tried = Vec::new();
        loop {
            let placement = self.place(&tried)?;
            let node = &placement.node;
            match self.forward(node, Method::POST, path, body.clone()).await {
                Ok(response) => return Ok(response),
                Err(Forward::Refused(e)) => return Err(e),
                Err(Forward::Unreachable(why)) => node.mark_down(why),
                Err(Forward::Broken(why)) => {
                    if !self.died(node).await {
                        return Err(connection_broke(node, &why));
                    }
                }
            }
            tried.push(node.name.clone());
        }
    }
}

/// A node's `/v1/health` answer with what it can already count.
struct Health {
    report: Value,
    /// The node's `settled` placements when the request left: its count includes those.
    settled_before: usize,
}

/// A session being placed on a node: the node counts it as load until it is dropped (the
/// placing request answered) and a health answer asked for after that includes it.
struct Placement {
    node: Arc<Node>,
}

impl Placement {
    /// A session placed on `node` (chosen by load, or the node its artifact lives on).
    fn on(node: Arc<Node>) -> Placement {
        node.placed.fetch_add(1, Ordering::Relaxed);
        Placement { node }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.node.settled.fetch_add(1, Ordering::Relaxed);
    }
}

/// How forwarding failed.
enum Forward {
    /// The router could not make the request.
    Refused(ApiError),
    /// No connection to the node: the request never reached it.
    Unreachable(String),
    /// The connection broke after the request was sent.
    Broken(String),
}

fn gone(node: &Node) -> ApiError {
    let why = lock(&node.down).clone().unwrap_or_default();
    ApiError::new(
        StatusCode::GONE,
        format!(
            "node {} is down ({why}): its sessions and artifacts were lost with it; create a new \
             session (new sessions go to the live nodes)",
            node.name
        ),
    )
}

/// A connection to a live node broke mid-request: the request may have run, so it is a 500
/// (not retried by clients), not a 502.
fn connection_broke(node: &Node, why: &str) -> ApiError {
    ApiError::internal(format!(
        "the connection to node {} broke during this request ({why}); it may or may not have \
         run: read the session (GET /v1/sessions/ID) before sending it again",
        node.name
    ))
}

/// The routes: spar's API and OpenEnv's HTTP routes, forwarded; node registration; health.
pub fn router(route: Arc<Route>) -> Router {
    let limit = route.settings.max_body_bytes;
    // OpenEnv clients that cannot send headers use `/t/TOKEN` (as on a node); spar's own
    // clients send the header.
    let openenv = Router::new()
        .route("/reset", post(create_session))
        .route("/step", post(openenv_step))
        .route("/state", get(openenv_state))
        .route("/ws", get(ws::websocket));
    let authenticated = Router::new()
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(on_session).delete(on_session))
        .route("/v1/sessions/{id}/step", post(on_session))
        .route("/v1/artifacts/{id}", get(on_artifact))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{name}", put(add_node).delete(remove_node))
        .merge(openenv.clone())
        .nest("/t/{token}", openenv)
        .route_layer(axum::middleware::from_fn_with_state(
            route.clone(),
            authorize,
        ));
    let public = Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({ "status": "healthy" })) }),
        )
        .route("/schema", get(any_node))
        .route("/metadata", get(any_node));
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .merge(public.clone())
        .nest("/t/{token}", public)
        .merge(authenticated)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(route)
}

async fn authorize(
    State(route): State<Arc<Route>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !token_matches(given_token(&request).as_deref(), &route.settings.token) {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

async fn create_session(
    State(route): State<Arc<Route>>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    route
        .create(path_of(&uri), body.map_err(body_rejection)?)
        .await
}

async fn on_session(
    State(route): State<Arc<Route>>,
    method: Method,
    uri: Uri,
    UrlPath(id): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let node = route.owner(&id, "session")?;
    let body = body.map_err(body_rejection)?;
    route.sticky(&node, method, path_of(&uri), body).await
}

async fn on_artifact(
    State(route): State<Arc<Route>>,
    uri: Uri,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let node = route.owner(&id, "artifact")?;
    route
        .sticky(&node, Method::GET, path_of(&uri), Bytes::new())
        .await
}

async fn openenv_step(
    State(route): State<Arc<Route>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    let fields: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("malformed request JSON: {e}")))?;
    let id = fields["session_id"].as_str().ok_or_else(|| {
        ApiError::bad("POST /step needs the session_id that POST /reset returned")
    })?;
    let node = route.owner(id, "session")?;
    route.sticky(&node, Method::POST, "/step", body).await
}

#[derive(Deserialize)]
struct StateQuery {
    session_id: String,
}

async fn openenv_state(
    State(route): State<Arc<Route>>,
    uri: Uri,
    query: Result<axum::extract::Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) = query
        .map_err(|e| ApiError::bad(format!("{e}: GET /state?session_id=ID (from POST /reset)")))?;
    let node = route.owner(&query.session_id, "session")?;
    route
        .sticky(&node, Method::GET, path_of(&uri), Bytes::new())
        .await
}

/// OpenEnv's `/schema` and `/metadata`: every node answers the same, so any live one does.
async fn any_node(State(route): State<Arc<Route>>, uri: Uri) -> Result<Response, ApiError> {
    let node = route.least_loaded(&[])?;
    route
        .sticky(&node, Method::GET, uri.path(), Bytes::new())
        .await
}

async fn list_nodes(State(route): State<Arc<Route>>) -> Json<Value> {
    let nodes: Vec<Value> = route
        .all_nodes()
        .iter()
        .map(|n| {
            let mut view = n.view();
            view["url"] = json!(n.base);
            view
        })
        .collect();
    Json(json!({ "nodes": nodes }))
}

async fn add_node(
    State(route): State<Arc<Route>>,
    UrlPath(name): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    let registration: NodeRegistration = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "a node registration is {{\"url\": \"http://HOST:PORT\", \"token\": \"...\"}}: {e}"
        ))
    })?;
    route.add_node(&name, registration).await?;
    Ok(Json(json!({ "node": name, "registered": true })).into_response())
}

async fn remove_node(
    State(route): State<Arc<Route>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    match route.remove_node(&name) {
        true => Ok(Json(json!({ "node": name, "removed": true }))),
        false => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no node {name:?} is registered (GET /v1/nodes lists them)"),
        )),
    }
}

async fn health(State(route): State<Arc<Route>>) -> Json<Value> {
    let nodes: Vec<Value> = route.all_nodes().iter().map(|n| n.view()).collect();
    let live = nodes.iter().filter(|n| n["alive"] == json!(true)).count();
    Json(json!({
        "status": if live > 0 { "ok" } else { "no live nodes" },
        "router": true,
        "live_nodes": live,
        "nodes": nodes,
        "sessions": nodes
            .iter()
            .filter(|n| n["alive"] == json!(true))
            .map(|n| n["sessions"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        "finished_episodes": route.finished.load(Ordering::Relaxed),
    }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Routes on `listener` until `shutdown` resolves (as [`super::serve`] does), reading every
/// node's health each [`RouteSettings::health_interval`] meanwhile.
pub async fn serve(
    route: Arc<Route>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let checker = {
        let route = route.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(route.settings.health_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                route.check_nodes().await;
            }
        })
    };
    let connections = route.settings.connections.clone();
    super::listen::run(listener, router(route), &connections, shutdown).await;
    checker.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route over `nodes` whose log nothing reads back.
    fn route_with(nodes: &[(&str, bool, usize, usize)]) -> Arc<Route> {
        let dir = scratch();
        let route = route_in(&dir, nodes);
        // The route keeps its log open.
        std::fs::remove_dir_all(&dir).unwrap();
        route
    }

    fn scratch() -> std::path::PathBuf {
        let name = format!("spar-route-unit-{}", crate::fsutil::unique_suffix());
        std::env::temp_dir().join(name)
    }

    fn route_in(dir: &std::path::Path, nodes: &[(&str, bool, usize, usize)]) -> Arc<Route> {
        let route = Route::new(RouteSettings {
            token: "t".into(),
            log: dir.join("episodes.jsonl"),
            health_interval: Duration::from_secs(1),
            max_body_bytes: 1 << 10,
            connections: ConnectionSettings::default(),
        })
        .unwrap();
        for &(name, alive, sessions, workers) in nodes {
            let node = Node {
                name: name.into(),
                base: format!("http://127.0.0.1:1/{name}"),
                auth: HeaderValue::from_static("Bearer t"),
                alive: AtomicBool::new(alive),
                down: Mutex::new(None),
                sessions: AtomicUsize::new(sessions),
                placed: AtomicUsize::new(0),
                settled: AtomicUsize::new(0),
                reflected: AtomicUsize::new(0),
                workers: AtomicUsize::new(workers),
                busy: AtomicUsize::new(0),
                inflight: AtomicUsize::new(0),
            };
            let mut map = route.nodes.write().unwrap();
            map.insert(name.into(), Arc::new(node));
        }
        route
    }

    #[test]
    fn a_health_answer_asked_for_before_a_session_was_made_does_not_forget_it() {
        let route = route_with(&[("a", true, 0, 1), ("b", true, 0, 1)]);
        let report = |sessions: usize| json!({"sessions": sessions, "workers": 1});
        let early = |node: &Node| Health {
            report: report(0),
            settled_before: node.settled.load(Ordering::Relaxed),
        };
        let first = route.place(&[]).unwrap();
        let asked_before = early(&first.node);
        let node = first.node.clone();
        drop(first);
        // The node made the session after it answered the health request.
        route.update(&node, &asked_before);
        assert_eq!(node.load(), 1.0);
        assert_ne!(route.place(&[]).unwrap().node.name, node.name);
        let asked_after = Health {
            report: report(1),
            settled_before: node.settled.load(Ordering::Relaxed),
        };
        route.update(&node, &asked_after);
        assert_eq!(node.load(), 1.0, "counted once, by the node");
    }

    #[test]
    fn placement_takes_the_live_node_with_least_load_per_worker_and_counts_it() {
        // b has more sessions but four times the workers; c is dead.
        let route = route_with(&[("a", true, 2, 1), ("b", true, 4, 4), ("c", false, 0, 8)]);
        let picks: Vec<String> = (0..4)
            .map(|_| route.place(&[]).unwrap().node.name.clone())
            .collect();
        // b: 1.0, then 1.25, 1.5, 1.75 as sessions are placed; a stays at 2.0.
        assert_eq!(picks, ["b", "b", "b", "b"]);
        assert_eq!(route.place(&["b".into()]).unwrap().node.name, "a");
        let none = route.place(&["a".into(), "b".into()]).err().unwrap();
        assert_eq!(none.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn ids_name_their_node_and_strangers_are_told_what_ids_look_like() {
        let route = route_with(&[("n1", true, 0, 1)]);
        assert_eq!(route.owner("n1.s0001", "session").unwrap().name, "n1");
        assert_eq!(route.owner("n1.a.b", "artifact").unwrap().name, "n1");
        let no_dot = route.owner("s0001", "session").err().unwrap();
        assert!(no_dot.message.contains("NODE.ID"), "{}", no_dot.message);
        let gone = route.owner("n2.s0001", "session").err().unwrap();
        assert!(gone.message.contains("node \"n2\""), "{}", gone.message);
    }

    #[test]
    fn a_finished_episode_is_taken_out_of_a_websocket_frame_and_logged() {
        let dir = scratch();
        let route = route_in(&dir, &[]);
        let frame =
            json!({"type": "observation", "data": {"done": true, "episode": {"episode": "n1.s1"}}});
        let stripped: Value =
            serde_json::from_str(&route.strip_episode(&frame.to_string())).unwrap();
        assert_eq!(
            stripped,
            json!({"type": "observation", "data": {"done": true}})
        );
        let plain = r#"{"type":"observation","data":{"done":false}}"#;
        assert_eq!(route.strip_episode(plain), plain);
        let log = std::fs::read_to_string(&route.settings.log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(log.lines().any(|l| l.contains("n1.s1")), "{log}");
    }
}
