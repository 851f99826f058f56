//! Continuous batching of generation across episodes. Episodes act on the scheduler's
//! blocking threads; each hands its turn to one generator thread, which steps every turn in
//! flight together (one batched pass per token: the weights are read once for all of them)
//! and lets turns join and leave between steps. Each sequence keeps its own cache and random
//! stream, so a turn draws what it would draw alone, up to float rounding of the batched
//! matrix products.

use super::generate::{step, Decoding};
use super::LmPolicy;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

type Reply = Sender<Result<Decoding, String>>;

/// The generator thread's handle; dropping the last one stops the thread.
pub struct Generator {
    policy: Arc<LmPolicy>,
    requests: Sender<(Decoding, Reply)>,
}

impl Generator {
    /// Starts the thread over `policy`, stepping at most `max_batch` turns at once.
    pub fn spawn(policy: Arc<LmPolicy>, max_batch: usize) -> Arc<Generator> {
        let (requests, incoming) = channel();
        let model = policy.clone();
        std::thread::Builder::new()
            .name("spar-generate".into())
            .spawn(move || serve(&model, &incoming, max_batch.max(1)))
            .expect("spawning the generator thread");
        Arc::new(Generator { policy, requests })
    }

    /// The policy it generates with.
    pub fn policy(&self) -> &LmPolicy {
        &self.policy
    }

    /// Runs `turn` to its end with whatever other turns are in flight.
    pub fn run(&self, turn: Decoding) -> Result<Decoding, String> {
        let (reply, answer) = channel();
        self.requests
            .send((turn, reply))
            .map_err(|_| "the generator thread stopped".to_owned())?;
        answer
            .recv()
            .map_err(|_| "the generator thread stopped".to_owned())?
    }
}

fn serve(policy: &LmPolicy, incoming: &Receiver<(Decoding, Reply)>, max_batch: usize) {
    let mut active: Vec<(Decoding, Reply)> = Vec::new();
    loop {
        if active.is_empty() {
            match incoming.recv() {
                Ok(request) => active.push(request),
                Err(_) => return,
            }
        }
        while active.len() < max_batch {
            match incoming.try_recv() {
                Ok(request) => active.push(request),
                Err(_) => break,
            }
        }
        let mut turns: Vec<&mut Decoding> = active.iter_mut().map(|(d, _)| d).collect();
        if let Err(e) = step(&policy.model, &mut turns) {
            for (_, reply) in active.drain(..) {
                let _ = reply.send(Err(format!("the language model failed: {e}")));
            }
            continue;
        }
        let mut i = 0;
        while i < active.len() {
            if active[i].0.done() {
                let (turn, reply) = active.swap_remove(i);
                let _ = reply.send(Ok(turn));
            } else {
                i += 1;
            }
        }
    }
}
