//! `spar bench route`: what the router costs. Real processes on this machine (`spar serve`
//! and `spar route`, this binary), driven over loopback by the same load three ways: one
//! server directly, the router in front of one node, and the router in front of two nodes
//! that split the same workers. Also the router's overhead per step on its own: one session's
//! sequential `read_file` steps, directly to a node and through the router, alternating.

use crate::serve::bench::{expect, latency, Latency, ServeBenchError};
use crate::serve::client::Client;
use serde::Serialize;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// What `spar bench route` does.
#[derive(Clone, Debug)]
pub struct RouteBenchSettings {
    /// This spar binary (the nodes and the router are started from it).
    pub spar_exe: PathBuf,
    /// The corpus project the injector sessions of the load play in.
    pub project: String,
    /// Episodes of the load: each a session, `reads` `read_file` steps, a file written, one
    /// test run, closed.
    pub episodes: usize,
    /// Episodes in flight at once (one keep-alive connection each).
    pub concurrency: usize,
    /// `read_file` steps per episode.
    pub reads: usize,
    /// Sandbox workers of the one server; the two nodes get half each (at least one).
    pub workers: usize,
    /// Sequential steps of the overhead measurement, each way.
    pub overhead_steps: usize,
    /// The project's test command's arguments (what each episode's test run runs).
    pub test_args: Vec<String>,
    /// Makes this benchmark's repository states new to the run memo.
    pub nonce: String,
}

/// One way of serving the load.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadResult {
    /// Finished episodes per second.
    pub episodes_per_s: f64,
    /// `read_file` steps under the load.
    pub read_file: Latency,
    /// Test runs under the load.
    pub test_run: Latency,
}

/// The measurements.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteBench {
    /// The project played in.
    pub project: String,
    /// Episodes per way, in flight at once, reads each.
    pub episodes: usize,
    /// Episodes in flight at once.
    pub concurrency: usize,
    /// Sandbox workers of the single server (split over the two nodes).
    pub workers: usize,
    /// One `spar serve`, directly.
    pub direct: LoadResult,
    /// `spar route` in front of one node with the same workers.
    pub one_node: LoadResult,
    /// `spar route` in front of two nodes with half the workers each.
    pub two_nodes: LoadResult,
    /// Sequential `read_file` steps straight to a node, ms.
    pub overhead_direct: Latency,
    /// The same steps on a session of the same node through the router, ms.
    pub overhead_routed: Latency,
    /// Routed p50 minus direct p50, ms: what the router adds to a step.
    pub router_overhead_p50_ms: f64,
    /// Two nodes' episodes/s over one server's.
    pub two_nodes_vs_direct: f64,
}

/// A spar process of the benchmark; killed when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "bench-route-token";

/// Starts `spar ARGS` and waits for the address it prints.
fn start(exe: &PathBuf, args: &[String]) -> Result<Process, ServeBenchError> {
    let mut child = Command::new(exe)
        .arg("-q")
        .args(args)
        .env("SPAR_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(ServeBenchError::Setup)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .find_map(|line| {
            let line = line.ok()?;
            line.split_once("listening on http://")?
                .1
                .trim()
                .parse()
                .ok()
        })
        .ok_or_else(|| ServeBenchError::Start(format!("{} {}", exe.display(), args.join(" "))))?;
    // Keep reading so the process never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Process { child, addr })
}

fn serve_args(workers: usize, node: Option<&str>, out: &std::path::Path) -> Vec<String> {
    // The overhead session takes thousands of steps.
    let mut args = vec![
        "serve",
        "--port",
        "0",
        "--max-turns",
        "1000000",
        "--workers",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    args.push(workers.to_string());
    args.extend(["--out".into(), out.display().to_string()]);
    if let Some(node) = node {
        args.extend(["--node-id".into(), node.into()]);
    }
    args
}

/// Runs the three ways and the overhead measurement.
pub fn bench(settings: &RouteBenchSettings) -> Result<RouteBench, ServeBenchError> {
    let dir = std::env::temp_dir().join(format!("spar-bench-route-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeBenchError::Setup)?;
    let result = runtime.block_on(measure(settings, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    settings: &RouteBenchSettings,
    dir: &std::path::Path,
) -> Result<RouteBench, ServeBenchError> {
    let exe = &settings.spar_exe;
    let workers = settings.workers.max(1);
    let direct = {
        let server = start(exe, &serve_args(workers, None, &dir.join("direct")))?;
        load(server.addr, settings, "direct").await?
    };
    let (one_node, overhead) = {
        let node = start(exe, &serve_args(workers, Some("n0"), &dir.join("one")))?;
        let router = router(exe, dir, "one-router", &[("n0", &node)]).await?;
        let overhead = overhead(node.addr, router.addr, settings).await?;
        (load(router.addr, settings, "one").await?, overhead)
    };
    let two_nodes = {
        let half = (workers / 2).max(1);
        let a = start(exe, &serve_args(half, Some("n0"), &dir.join("two-a")))?;
        let b = start(exe, &serve_args(half, Some("n1"), &dir.join("two-b")))?;
        let router = router(exe, dir, "two-router", &[("n0", &a), ("n1", &b)]).await?;
        load(router.addr, settings, "two").await?
    };
    let (overhead_direct, overhead_routed) = overhead;
    Ok(RouteBench {
        project: settings.project.clone(),
        episodes: settings.episodes,
        concurrency: settings.concurrency,
        workers,
        router_overhead_p50_ms: overhead_routed.p50_ms - overhead_direct.p50_ms,
        two_nodes_vs_direct: two_nodes.episodes_per_s / direct.episodes_per_s.max(1e-9),
        direct,
        one_node,
        two_nodes,
        overhead_direct,
        overhead_routed,
    })
}

/// A router with `nodes` registered.
async fn router(
    exe: &PathBuf,
    dir: &std::path::Path,
    name: &str,
    nodes: &[(&str, &Process)],
) -> Result<Process, ServeBenchError> {
    let out = dir.join(name).display().to_string();
    let router = start(
        exe,
        &[
            "route".into(),
            "--port".into(),
            "0".into(),
            "--out".into(),
            out,
        ],
    )?;
    let mut client = Client::connect(router.addr, TOKEN).await?;
    for (name, node) in nodes {
        let body = json!({"url": format!("http://{}", node.addr), "token": TOKEN});
        let path = format!("/v1/nodes/{name}");
        expect(
            "registering a node",
            client.request("PUT", &path, Some(&body)).await?,
            200,
        )?;
    }
    Ok(router)
}

/// The load: `episodes` injector episodes, `concurrency` at once.
async fn load(
    addr: SocketAddr,
    settings: &RouteBenchSettings,
    phase: &'static str,
) -> Result<LoadResult, ServeBenchError> {
    let started = Instant::now();
    let per_task = settings.episodes.div_ceil(settings.concurrency.max(1));
    let mut tasks = Vec::new();
    for task in 0..settings.concurrency.max(1) {
        let settings = settings.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, TOKEN).await?;
            let (mut reads, mut runs) = (Vec::new(), Vec::new());
            for i in 0..per_task {
                let n = task * per_task + i;
                if n >= settings.episodes {
                    break;
                }
                episode(&mut client, &settings, (phase, n), &mut reads, &mut runs).await?;
            }
            Ok::<_, ServeBenchError>((reads, runs))
        }));
    }
    let (mut reads, mut runs) = (Vec::new(), Vec::new());
    for task in tasks {
        let (r, t) = task.await.map_err(ServeBenchError::Crashed)??;
        reads.extend(r);
        runs.extend(t);
    }
    let wall = started.elapsed();
    Ok(LoadResult {
        episodes_per_s: settings.episodes as f64 / wall.as_secs_f64().max(1e-9),
        read_file: latency(reads, wall),
        test_run: latency(runs, wall),
    })
}

async fn episode(
    client: &mut Client,
    settings: &RouteBenchSettings,
    (phase, n): (&str, usize),
    reads: &mut Vec<f64>,
    runs: &mut Vec<f64>,
) -> Result<(), ServeBenchError> {
    let id = injector_session(client, &settings.project, n as u64).await?;
    let step = format!("/v1/sessions/{id}/step");
    let read = json!({"tool": "read_file", "path": "pyproject.toml"});
    for _ in 0..settings.reads {
        let t = Instant::now();
        expect(
            "read_file",
            client.request("POST", &step, Some(&read)).await?,
            200,
        )?;
        reads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // A state no other run has seen (the servers' run memo persists on disk between
    // benchmarks, and leaves files that are not Python out of its key), so no memo answers.
    let content = format!("# {n} {} {phase}\n", settings.nonce);
    let marker = json!({"tool": "create", "path": format!("bench_{n}.py"), "content": content});
    expect(
        "create",
        client.request("POST", &step, Some(&marker)).await?,
        200,
    )?;
    let t = Instant::now();
    let run = json!({"tool": "run", "args": settings.test_args});
    expect("run", client.request("POST", &step, Some(&run)).await?, 200)?;
    runs.push(t.elapsed().as_secs_f64() * 1e3);
    expect(
        "closing",
        client
            .request("DELETE", &format!("/v1/sessions/{id}"), None)
            .await?,
        200,
    )?;
    Ok(())
}

/// A new injector session's id.
async fn injector_session(
    client: &mut Client,
    project: &str,
    seed: u64,
) -> Result<String, ServeBenchError> {
    let create = json!({"role": "injector", "project": project, "seed": seed});
    let answer = client
        .request("POST", "/v1/sessions", Some(&create))
        .await?;
    let created = expect("creating a session", answer, 201)?;
    Ok(created["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// One session on the node, its `read_file` steps sent alternately straight to the node and
/// through the router, one at a time: the difference is the router's alone.
async fn overhead(
    node: SocketAddr,
    router: SocketAddr,
    settings: &RouteBenchSettings,
) -> Result<(Latency, Latency), ServeBenchError> {
    let mut direct = Client::connect(node, TOKEN).await?;
    let mut routed = Client::connect(router, TOKEN).await?;
    let id = injector_session(&mut routed, &settings.project, 0).await?;
    let step = format!("/v1/sessions/{id}/step");
    let read = json!({"tool": "read_file", "path": "pyproject.toml"});
    let (mut straight, mut through) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..settings.overhead_steps.max(1) * 2 {
        let (client, times) = match i % 2 {
            0 => (&mut direct, &mut straight),
            _ => (&mut routed, &mut through),
        };
        let t = Instant::now();
        expect(
            "read_file",
            client.request("POST", &step, Some(&read)).await?,
            200,
        )?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let wall = started.elapsed() / 2;
    Ok((latency(straight, wall), latency(through, wall)))
}

impl std::fmt::Display for RouteBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "spar route on loopback, project {}: {} episodes ({} at once; each: reads, a file \
             written, one test run), {} sandbox workers in all",
            self.project, self.episodes, self.concurrency, self.workers
        )?;
        writeln!(
            f,
            "| served by | episodes/s | read_file p50 ms | test run p50 ms |"
        )?;
        writeln!(f, "| --- | --- | --- | --- |")?;
        for (name, r) in [
            ("one spar serve, directly", &self.direct),
            ("spar route + 1 node", &self.one_node),
            (
                "spar route + 2 nodes (half the workers each)",
                &self.two_nodes,
            ),
        ] {
            writeln!(
                f,
                "| {name} | {:.2} | {:.2} | {:.0} |",
                r.episodes_per_s, r.read_file.p50_ms, r.test_run.p50_ms
            )?;
        }
        writeln!(
            f,
            "router overhead per step (sequential read_file, same session): p50 {:.3} ms \
             direct, {:.3} ms routed: +{:.3} ms",
            self.overhead_direct.p50_ms, self.overhead_routed.p50_ms, self.router_overhead_p50_ms
        )?;
        writeln!(
            f,
            "2 nodes vs one server: {:.2}x the episodes/s",
            self.two_nodes_vs_direct
        )
    }
}
