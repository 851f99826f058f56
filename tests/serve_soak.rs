//! A soak test of a real `spar serve` process on loopback: many sessions while 300 clients
//! stall half-way through their request headers, hostile tool calls mixed in (a 2 GiB sparse
//! write, an infinite loop, an output flood, malformed calls), health checked all along; then
//! SIGINT with connections still open. It bounds its own time and kills the server if it
//! fails.

mod common;

use serde_json::{json, Value};
use spar::serve::client::Client;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "soak-token";

/// Sessions run concurrently, each by one client.
const WORKERS: usize = 16;
/// Sessions each worker plays to the end, one after another.
const SESSIONS_PER_WORKER: usize = 3;
/// Clients that send half a request header and stall.
const STALLED: usize = 300;

/// The server process; killed (and reaped) if the test ends before it exits by itself.
struct ServerProcess {
    child: Child,
    stderr: PathBuf,
}

impl ServerProcess {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `spar serve` on a free loopback port, writing to `out`; returns once it listens.
fn start_server(out: &Path) -> (ServerProcess, SocketAddr) {
    // The guest runtime fetched and compiled once, before the server loads it.
    common::python();
    let stderr = out.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spar"))
        .args(["--quiet", "serve", "--port", "0", "--token", TOKEN])
        .args([
            "--max-turns",
            "4",
            "--run-timeout",
            "3",
            "--read-timeout",
            "5",
        ])
        .args(["--shutdown-grace", "2", "--workers", "2", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spar serve starts");
    let stdout = child.stdout.take().unwrap();
    let server = ServerProcess { child, stderr };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read every line, so the server never blocks on a full pipe.
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("spar serve listening on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("spar serve did not start: {}", server.stderr()));
    (server, addr)
}

/// `GET /v1/health` on a fresh connection: its body and how long it took.
async fn health(addr: SocketAddr) -> (Value, Duration) {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let mut c = Client::connect(addr, "").await?;
        c.request("GET", "/v1/health", None).await
    })
    .await
    .expect("health answers within 10 s")
    .expect("health answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    (answer.body, started.elapsed())
}

/// Checks health every 200 ms until `stop`; returns the slowest answer.
fn watch_health(addr: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            worst = worst.max(health(addr).await.1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        worst
    })
}

/// The hostile `run` calls: a 2 GiB sparse write, an infinite loop, an output flood.
fn hostile_runs() -> Vec<Value> {
    [
        "f=open('/tmp/s','wb'); f.seek(2*1024**3); f.write(b'x')",
        "while True: pass",
        "import sys\nwhile True: sys.stdout.write('x' * 65536)",
    ]
    .iter()
    .map(|code| json!({"tool": "run", "args": ["-c", code]}))
    .collect()
}

/// Plays one injector session until the turn limit ends it; returns its id.
async fn play(c: &mut Client, hostile: Option<Value>) -> String {
    let a = c
        .request(
            "POST",
            "/v1/sessions",
            Some(&json!({"role": "injector", "project": "exprcalc"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["session_id"].as_str().unwrap().to_owned();
    let step = format!("/v1/sessions/{id}/step");
    // A malformed call is refused and costs no turn.
    let a = c
        .request("POST", &step, Some(&json!({"tool": "rm", "path": "/"})))
        .await
        .unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    let calls = [
        hostile.unwrap_or(json!({"tool": "list_dir", "path": "."})),
        json!({"name": "read_file", "arguments": "{\"path\": \"pyproject.toml\"}"}),
        json!({"tool": "search", "pattern": "def \\w+"}),
        json!({"tool": "diff"}),
    ];
    for (turn, call) in calls.iter().enumerate() {
        let a = c.request("POST", &step, Some(call)).await.unwrap();
        assert_eq!(a.status, 200, "{call}: {}", a.body);
        assert!(!a.body["observation"]["text"].as_str().unwrap().is_empty());
        assert_eq!(a.body["truncated"], turn == calls.len() - 1, "{}", a.body);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spar_serve_survives_a_soak_and_stops_on_sigint() {
    let out = std::env::temp_dir().join(format!("spar-serve-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let (mut server, addr) = start_server(&out);
    let soak = tokio::time::timeout(Duration::from_secs(90), soak(addr));
    let finished = soak
        .await
        .unwrap_or_else(|_| panic!("the soak ran past 90 s; server: {}", server.stderr()));
    // The write bomb (a 2 GiB hole) allocated nothing: the server's peak resident memory stays
    // far below it (it was 2.1 GB before holes were charged against the write limit).
    if let Some(peak_kib) = peak_rss_kib(server.child.id()) {
        eprintln!("soak: server peak RSS {} MiB", peak_kib >> 10);
        assert!(peak_kib < 1 << 20, "peak RSS {peak_kib} KiB");
    }

    // SIGINT with idle keep-alive clients, fresh stalled clients and a `run` in flight.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let mut c = Client::connect(addr, TOKEN).await.unwrap();
        assert_eq!(
            c.request("GET", "/v1/health", None).await.unwrap().status,
            200
        );
        idle.push(c);
    }
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(common::half_open(addr).await);
    }
    let in_flight = tokio::spawn(async move {
        let mut c = Client::connect(addr, TOKEN).await.unwrap();
        let create = json!({"role": "injector", "project": "exprcalc"});
        let a = c
            .request("POST", "/v1/sessions", Some(&create))
            .await
            .unwrap();
        let step = format!(
            "/v1/sessions/{}/step",
            a.body["session_id"].as_str().unwrap()
        );
        let endless = json!({"tool": "run", "args": ["-c", "while True: pass"]});
        let _ = c.request("POST", &step, Some(&endless)).await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    let signalled = Instant::now();
    // SAFETY: kill(2) with our own child's pid, which we have not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGINT: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    eprintln!("spar serve exited {took:?} after SIGINT ({status})");
    assert!(status.success(), "{status}: {}", server.stderr());
    assert!(took < Duration::from_secs(8), "{took:?}");
    let _ = in_flight.await;

    // Every finished episode is in the log, whole.
    let log = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
    let logged: BTreeSet<String> = log
        .lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("whole JSON lines");
            record["episode"].as_str().unwrap().to_owned()
        })
        .collect();
    let missing: Vec<_> = finished.difference(&logged).collect();
    assert!(missing.is_empty(), "finished but not logged: {missing:?}");
    drop((idle, stalled));
    std::fs::remove_dir_all(&out).ok();
}

/// The soak proper: returns the ids of the sessions that finished.
async fn soak(addr: SocketAddr) -> BTreeSet<String> {
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(common::half_open(addr).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_health(addr, stop.clone());
    let mut hostile = hostile_runs().into_iter();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let first = hostile.next();
        workers.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, TOKEN).await.unwrap();
            let mut ids = vec![play(&mut c, first).await];
            for _ in 1..SESSIONS_PER_WORKER {
                ids.push(play(&mut c, None).await);
            }
            ids
        }));
    }
    let mut finished = BTreeSet::new();
    for worker in workers {
        finished.extend(worker.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    let worst = watcher.await.unwrap();
    let (body, _) = health(addr).await;
    eprintln!(
        "soak: {} sessions finished in {:?} with {STALLED} stalled clients; slowest health \
         check {worst:?}",
        finished.len(),
        started.elapsed()
    );
    assert_eq!(finished.len(), WORKERS * SESSIONS_PER_WORKER);
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    assert_eq!(body["finished_episodes"], finished.len(), "{body}");
    drop(stalled);
    finished
}

/// A process's peak resident set (`VmHWM`), in KiB; `None` without `/proc`.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
