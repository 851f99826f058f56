//! `spar route`: one address in front of a cluster of `spar serve --node-id` nodes.

use crate::cli::args::RouteArgs;
use crate::cli::commands::serve::{stop_signal, token};
use crate::serve::route::{self as routing, NodeRegistration, RouteSettings};
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// `spar route`, resolved.
pub struct Route {
    settings: RouteSettings,
    addr: SocketAddr,
    nodes: BTreeMap<String, NodeRegistration>,
}

impl Route {
    /// The token (given, from `SPAR_TOKEN`, or fresh) and the settings.
    pub fn resolve(args: &RouteArgs) -> anyhow::Result<Route> {
        let settings = RouteSettings {
            token: token(args.token.as_deref())?,
            log: args.out.join("episodes.jsonl"),
            health_interval: Duration::from_millis(args.health_interval_ms),
            max_body_bytes: args.max_body_bytes,
            connections: args.connections.settings(),
        };
        let nodes = match &args.nodes {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --nodes {}", path.display()))?;
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "--nodes {}: give a JSON object {{\"NAME\": {{\"url\": \
                         \"http://HOST:PORT\", \"token\": \"...\"}}}}",
                        path.display()
                    )
                })?
            }
            None => BTreeMap::new(),
        };
        Ok(Route {
            settings,
            addr: SocketAddr::new(args.host, args.port),
            nodes,
        })
    }

    /// Routes until SIGINT or SIGTERM, then shuts down gracefully.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let Route {
            settings,
            addr,
            nodes,
        } = self;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("listening on {addr} (is another server on that port? try --port 0)")
            })?;
            let addr = listener.local_addr()?;
            let log = settings.log.clone();
            let token = settings.token.clone();
            let route = routing::Route::new(settings)?;
            // Before the address is printed: a restarted router has its nodes when it is found.
            route.add_known_nodes(nodes).await?;
            println!("spar route listening on http://{addr}");
            println!("token: {token}");
            println!("openenv base url: http://{addr}/t/{token}");
            println!("episodes: {}", log.display());
            println!(
                "register nodes: PUT http://{addr}/v1/nodes/NAME {{\"url\": \"http://HOST:PORT\", \
                 \"token\": \"NODE_TOKEN\"}} (spar serve --node-id NAME)"
            );
            std::io::stdout().flush()?;
            routing::serve(route, listener, stop_signal()).await;
            eprintln!(
                "spar route: stopped; finished episodes are in {}",
                log.display()
            );
            anyhow::Ok(())
        })?;
        runtime.shutdown_timeout(Duration::from_millis(500));
        Ok(ExitCode::SUCCESS)
    }
}
