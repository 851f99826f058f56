//! An in-process `spar serve` on loopback for the server tests, over the calc project.

use spar::protocol::Validator;
use spar::serve::client::Client;
use spar::serve::{serve, ConnectionSettings, ServeSettings, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN: &str = "test-token";

/// The calc artifact (`sub` broken), validated and written to `dir`.
pub fn artifact_dir(validator: &Validator, dir: &Path) -> PathBuf {
    let (artifact, report, _) = super::calc_task(validator);
    let out = dir.join(artifact.id());
    spar::inject::write_artifact(&artifact, &report, &out).unwrap();
    out
}

pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), spar::serve::ServeError>>,
    pub server: Arc<Server>,
}

impl Running {
    pub async fn client(&self) -> Client {
        Client::connect(self.addr, TOKEN).await.unwrap()
    }

    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

pub async fn start(
    dir: &Path,
    validator: Arc<Validator>,
    tune: impl FnOnce(&mut ServeSettings),
) -> Running {
    let (log, artifacts_dir) = spar::serve::default_paths(dir);
    let mut settings = ServeSettings {
        token: TOKEN.into(),
        max_sessions: 2000,
        max_body_bytes: 64 << 10,
        idle_timeout: Duration::from_secs(600),
        env: spar::episode::EnvSettings::default(),
        tools: Default::default(),
        pool: Default::default(),
        attempts: 2,
        alpha: 0.8,
        workers: 2,
        log,
        artifacts_dir,
        connections: ConnectionSettings {
            // The shutdown test grades a submission while stopping: generous on loaded cores.
            shutdown_grace: Duration::from_secs(60),
            ..ConnectionSettings::default()
        },
        node: None,
    };
    tune(&mut settings);
    let server = Server::new(
        super::python_arc(),
        validator,
        settings,
        Box::new(|name| {
            if name == "calc" {
                Ok(super::calc_project(spar::corpus::Split::Train))
            } else {
                Err(spar::corpus::CorpusError::NoSuchProject(name.to_owned()))
            }
        }),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(server.clone(), listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
        server,
    }
}
