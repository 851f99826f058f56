//! `spar serve`: episodes over HTTP/JSON for RL frameworks and LLM agents.

use crate::cli::args::ServeArgs;
use crate::cli::context::Context;
use crate::corpus::{self, Store};
use crate::episode::EnvSettings;
use crate::inject::{InjectSettings, Injector, Strategy};
use crate::serve::pool::TaskPool;
use crate::serve::{ServeSettings, Server};
use anyhow::Context as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `spar serve`, resolved.
pub struct Serve {
    server: Arc<Server>,
    addr: SocketAddr,
    token: String,
    log: PathBuf,
    max_sessions: usize,
}

impl Serve {
    /// The token (given, from `SPAR_TOKEN`, or fresh), the settings checked, and the server
    /// built with its runtime, validator and episode log.
    pub fn resolve(ctx: &Context, args: &ServeArgs) -> anyhow::Result<Serve> {
        let token = token(args.token.as_deref())?;
        if args.max_sessions == 0 || args.attempts == 0 || args.max_turns == 0 {
            anyhow::bail!("--max-sessions, --attempts and --max-turns must be at least 1");
        }
        let python = ctx.shared_python()?;
        let validator = ctx.persistent_validator(&python);
        let (log, artifacts_dir) = crate::serve::default_paths(&args.out);
        let settings = ServeSettings {
            token: token.clone(),
            max_sessions: args.max_sessions,
            max_body_bytes: args.max_body_bytes,
            idle_timeout: args.idle_timeout,
            env: EnvSettings {
                max_turns: args.max_turns,
                run_timeout: args.run_timeout,
                ..EnvSettings::default()
            },
            attempts: args.attempts,
            tools: args.tools,
            pool: task_pool(ctx, args, &python, &validator)?,
            alpha: crate::episode::rewards::DEFAULT_ALPHA,
            workers: args.workers.unwrap_or_else(crate::par::cores).max(1),
            log: log.clone(),
            artifacts_dir,
            connections: args.connections.settings(),
            node: args.node_id.clone(),
        };
        let store: Store = ctx.store.clone();
        let resolver = Box::new(move |name: &str| {
            corpus::open_project(name, &crate::demo::default_corpus_dir(), &store)
        });
        Ok(Serve {
            server: Server::new(python, validator, settings, resolver)?,
            addr: SocketAddr::new(args.host, args.port),
            token,
            log,
            max_sessions: args.max_sessions,
        })
    }

    /// Listens until SIGINT or SIGTERM, then shuts down gracefully.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .max_blocking_threads(self.max_sessions.clamp(64, 1024))
            .thread_stack_size(crate::sandbox::RUN_THREAD_STACK)
            .build()?;
        let Serve {
            server,
            addr,
            token,
            log,
            ..
        } = self;
        let served = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("listening on {addr} (is another server on that port? try --port 0)")
            })?;
            let addr = listener.local_addr()?;
            println!("spar serve listening on http://{addr}");
            println!("token: {token}");
            println!("openenv base url: http://{addr}/t/{token}");
            println!("episodes: {}", log.display());
            std::io::stdout().flush()?;
            crate::serve::serve(server, listener, stop_signal()).await?;
            eprintln!(
                "spar serve: stopped; finished episodes are in {}",
                log.display()
            );
            anyhow::Ok(())
        });
        // Steps still running after the grace period are abandoned, not awaited: dropping
        // the runtime would wait for every blocking task (a `run` may take minutes).
        runtime.shutdown_timeout(Duration::from_millis(500));
        served?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The task pool: `--tasks`, then procedural bugs in each `--corpus` project, made once under
/// `OUT/pool/PROJECT` (a later start with the same project and size reuses them).
fn task_pool(
    ctx: &Context,
    args: &ServeArgs,
    python: &crate::guest::Python,
    validator: &crate::protocol::Validator,
) -> anyhow::Result<TaskPool> {
    let mut pool = match &args.tasks {
        Some(path) => TaskPool::load(path)?,
        None => TaskPool::default(),
    };
    for name in &args.corpus {
        let out = args.out.join("pool").join(name);
        let made = TaskPool::load(&out).map_or(0, |p| p.len());
        if made < args.pool_size {
            let project = ctx.open_project(name)?;
            eprintln!(
                "spar serve: making {} procedural bugs in {name} for the task pool",
                args.pool_size - made
            );
            let settings = InjectSettings {
                strategy: Strategy::Procedural,
                count: args.pool_size - made,
                seed: made as u64,
                max_candidates: 40 * args.pool_size,
                out: out.clone(),
            };
            Injector::new(python, validator, &project)?.inject(&settings)?;
        }
        pool.extend(TaskPool::load(&out).with_context(|| format!("the task pool of {name}"))?);
    }
    if !pool.is_empty() {
        eprintln!("spar serve: task pool of {} bugs", pool.len());
    }
    Ok(pool)
}

/// The token given (`--token`, else `$SPAR_TOKEN`), or a fresh one.
pub(super) fn token(given: Option<&str>) -> anyhow::Result<String> {
    match given
        .map(str::to_owned)
        .or_else(|| std::env::var("SPAR_TOKEN").ok())
    {
        Some(t) if t.trim().is_empty() => {
            anyhow::bail!("the token is empty; give --token TOKEN or leave it out for a fresh one")
        }
        Some(t) => Ok(t),
        None => Ok(crate::serve::new_token()),
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service managers and containers
/// send): `spar serve` then shuts down gracefully either way.
pub(super) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
