//! OpenEnv's `/ws` through the router: one client connection, carried to the node that plays
//! its episode. The node is chosen at each `reset` (the artifact's node for an `artifact_id`,
//! else the connection's current node while it lives, else the least-loaded one), so a
//! connection that resets onto another node's artifact moves there; frames pass through as
//! they are, except that a finished episode's record is taken out for the router's log.

use super::{Node, Placement, Route};
use crate::serve::openenv::error_frame;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET /ws` (and `/t/TOKEN/ws`).
pub(super) async fn websocket(
    State(route): State<Arc<Route>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, crate::serve::ApiError> {
    let upgrade = upgrade.map_err(crate::serve::openenv::not_a_websocket)?;
    let limit = route.settings.max_body_bytes;
    Ok(upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| carry(route, socket)))
}

/// One client connection and the node connection its current episode lives on.
struct Carrier {
    route: Arc<Route>,
    upstream: Option<(Arc<Node>, Upstream)>,
    /// The placement of the episode a reset is making on the node, until the node answers it.
    pending: Option<Placement>,
}

async fn carry(route: Arc<Route>, mut client: WebSocket) {
    let mut carrier = Carrier {
        route,
        upstream: None,
        pending: None,
    };
    loop {
        tokio::select! {
            received = client.recv() => {
                let text = match received {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => break,
                };
                if let Some(error) = carrier.send(&text).await {
                    if client.send(Message::Text(error.to_string().into())).await.is_err() {
                        break;
                    }
                }
            }
            frame = carrier.next() => {
                carrier.pending = None;
                let reply = match frame {
                    Some(text) => carrier.route.strip_episode(&text),
                    None => carrier.lost().await,
                };
                if client.send(Message::Text(reply.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    if let Some((_, mut upstream)) = carrier.upstream.take() {
        let _ = upstream.close(None).await;
    }
}

impl Carrier {
    /// Sends a client frame to its node (connecting on a reset); an error frame for the client
    /// when it cannot.
    async fn send(&mut self, text: &str) -> Option<Value> {
        let message: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if message["type"] == "reset" {
            if let Err(error) = self.connect_for(&message["data"]).await {
                return Some(error);
            }
        }
        if message["type"] == "close" {
            // The node hangs up after a close: that end is expected, not a lost node.
            if let Some((_, mut upstream)) = self.upstream.take() {
                let _ = upstream.send(Frame::text(text)).await;
                let _ = upstream.close(None).await;
            }
            return None;
        }
        let Some((node, upstream)) = &mut self.upstream else {
            return Some(error_frame(
                "no episode on this connection: send a reset first",
                "NO_EPISODE",
            ));
        };
        match upstream.send(Frame::text(text)).await {
            Ok(()) => None,
            Err(_) => {
                let node = node.clone();
                self.upstream = None;
                self.route.died(&node).await;
                Some(error_frame(&super::gone(&node).message, "NODE_DOWN"))
            }
        }
    }

    /// Makes sure the connection's node is the one a reset with `data` belongs on.
    async fn connect_for(&mut self, data: &Value) -> Result<(), Value> {
        let wanted = match data.get("artifact_id").and_then(Value::as_str) {
            Some(id) => Some(self.route.owner(id, "artifact").map_err(error_of)?),
            None => None,
        };
        let keep = match (&self.upstream, &wanted) {
            (Some((node, _)), Some(wanted)) => Arc::ptr_eq(node, wanted),
            (Some((node, _)), None) => node.alive.load(Ordering::Relaxed),
            (None, _) => false,
        };
        if keep {
            return Ok(());
        }
        if let Some((_, mut old)) = self.upstream.take() {
            let _ = old.close(None).await;
        }
        let mut tried = Vec::new();
        loop {
            let placement = match &wanted {
                Some(node) => Placement::on(node.clone()),
                None => self.route.place(&tried).map_err(error_of)?,
            };
            let node = placement.node.clone();
            match connect(&node).await {
                Ok(upstream) => {
                    self.upstream = Some((node, upstream));
                    self.pending = Some(placement);
                    return Ok(());
                }
                Err(why) => {
                    node.mark_down(why);
                    if wanted.is_some() {
                        return Err(error_of(super::gone(&node)));
                    }
                    tried.push(node.name.clone());
                }
            }
        }
    }

    /// The next frame from the node, or `None` when its connection ended; never resolves
    /// while there is no node connection.
    async fn next(&mut self) -> Option<String> {
        let Some((_, upstream)) = &mut self.upstream else {
            return std::future::pending().await;
        };
        loop {
            match upstream.next().await {
                Some(Ok(Frame::Text(text))) => return Some(text.to_string()),
                Some(Ok(Frame::Binary(bytes))) => {
                    return Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                Some(Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_))) => continue,
                Some(Ok(Frame::Close(_)) | Err(_)) | None => return None,
            }
        }
    }

    /// The client's error frame once its node connection ended under it: the node died, or
    /// it closed the episode (idle past its timeout, or shutting down).
    async fn lost(&mut self) -> String {
        let Some((node, _)) = self.upstream.take() else {
            return error_frame("no episode on this connection", "NO_EPISODE").to_string();
        };
        if self.route.died(&node).await {
            return error_frame(&super::gone(&node).message, "NODE_DOWN").to_string();
        }
        let message = format!(
            "node {} closed this episode (idle past its timeout, or shutting down): send a \
             reset for a new one",
            node.name
        );
        error_frame(&message, "EPISODE_CLOSED").to_string()
    }
}

async fn connect(node: &Node) -> Result<Upstream, String> {
    let url = format!("{}/ws", node.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert(header::AUTHORIZATION, node.auth.clone());
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(super::PROBE_TIMEOUT, connecting).await {
        Ok(Ok((upstream, _))) => Ok(upstream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no WebSocket within {:?}", super::PROBE_TIMEOUT)),
    }
}

fn error_of(error: crate::serve::ApiError) -> Value {
    error_frame(&error.message, "ROUTER")
}
