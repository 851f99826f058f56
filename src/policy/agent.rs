//! The policy as a solver agent: it restores the specification's tests, runs them, and then,
//! within a budget of tries, samples a repair candidate, writes it, runs the tests, keeps it
//! when fewer tests fail and reverts it otherwise; it submits once the tests pass or the budget
//! is spent. Every choice is recorded for training.

use super::features::{content_key, solver_choice, Choice};
use super::model::{candidate_logps, Decision, PolicyNet};
use crate::agents::{failures, restore_tests, test_args, Agent, AgentFactory, Rng, View};
use crate::episode::{Action, Observation, Task};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Where finished episodes leave their decisions: `(episode key "TASK#ATTEMPT", decisions)`.
pub type DecisionSink = Arc<Mutex<Vec<(String, Vec<Decision>)>>>;

/// Samples a candidate of `choice` (all allowed) from the policy: `(index, log-probability)`.
/// `greedy` takes the most likely one instead. `None` when there is no candidate.
pub fn sample(
    net: &PolicyNet,
    choice: &Choice,
    rng: &mut Rng,
    greedy: bool,
) -> Option<(usize, f32)> {
    if choice.candidates.is_empty() {
        return None;
    }
    let allowed = vec![true; choice.candidates.len()];
    let logps = candidate_logps(net, choice, &allowed).ok()?;
    let index = if greedy {
        logps
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)?
    } else {
        let u = rng.unit() as f32;
        let mut acc = 0.0;
        let mut pick = logps.len() - 1;
        for (i, lp) in logps.iter().enumerate() {
            acc += lp.exp();
            if u < acc {
                pick = i;
                break;
            }
        }
        pick
    };
    Some((index, logps[index]))
}

enum Phase {
    RestoreTests(VecDeque<Action>),
    Baseline,
    Trying,
    Done,
}

/// A solver driven by the policy network.
pub struct PolicySolver {
    net: Arc<PolicyNet>,
    rng: Rng,
    key: String,
    sink: Option<DecisionSink>,
    phase: Phase,
    output: String,
    best_failures: usize,
    tried: BTreeSet<(String, u64)>,
    pending: Option<(String, String)>,
    reverting: bool,
    tries: usize,
    max_tries: usize,
    decisions: Vec<Decision>,
}

impl PolicySolver {
    /// A solver for one attempt; `key` names the episode in the sink, `max_tries` bounds the
    /// candidates it tries.
    pub fn new(
        net: Arc<PolicyNet>,
        seed: u64,
        key: String,
        max_tries: usize,
        sink: Option<DecisionSink>,
    ) -> Self {
        PolicySolver {
            net,
            rng: Rng(seed ^ 0x534f_4c56),
            key,
            sink,
            phase: Phase::RestoreTests(VecDeque::new()),
            output: String::new(),
            best_failures: usize::MAX,
            tried: BTreeSet::new(),
            pending: None,
            reverting: false,
            tries: 0,
            max_tries: max_tries.max(1),
            decisions: Vec::new(),
        }
    }

    fn next_try(&mut self, view: &View) -> Action {
        if self.tries >= self.max_tries {
            self.phase = Phase::Done;
            return Action::Submit;
        }
        let choice = solver_choice(view.state, &self.output, &self.tried, &mut self.rng);
        let Some((index, logp)) = sample(&self.net, &choice, &mut self.rng, false) else {
            self.phase = Phase::Done;
            return Action::Submit;
        };
        let candidate = &choice.candidates[index];
        let Some(current) = view
            .state
            .file(&candidate.path)
            .and_then(|c| String::from_utf8(c.to_vec()).ok())
        else {
            self.phase = Phase::Done;
            return Action::Submit;
        };
        let content = candidate.edit.apply(&current);
        let path = candidate.path.clone();
        self.tried.insert((path.clone(), content_key(&content)));
        self.tries += 1;
        self.pending = Some((path.clone(), current));
        self.decisions.push(Decision {
            allowed: vec![true; choice.candidates.len()],
            choice,
            chosen: index,
            logp,
        });
        Action::Create { path, content }
    }
}

impl Agent for PolicySolver {
    fn name(&self) -> &str {
        "policy"
    }

    fn act(&mut self, observation: &Observation, view: &View) -> Action {
        match &mut self.phase {
            Phase::RestoreTests(queue) => {
                if view.turn == 0 {
                    *queue = restore_tests(view);
                }
                if let Some(a) = queue.pop_front() {
                    return a;
                }
                self.phase = Phase::Baseline;
                Action::Run {
                    args: test_args(view.test_command),
                }
            }
            Phase::Baseline => {
                self.best_failures = failures(&observation.text);
                if self.best_failures == 0 && observation.text.contains("[exit code 0]") {
                    self.phase = Phase::Done;
                    return Action::Submit;
                }
                self.output = observation.text.clone();
                self.phase = Phase::Trying;
                self.next_try(view)
            }
            Phase::Trying => {
                if std::mem::take(&mut self.reverting) || observation.error {
                    return self.next_try(view);
                }
                if observation.text.starts_with("wrote ") {
                    return Action::Run {
                        args: test_args(view.test_command),
                    };
                }
                let now = failures(&observation.text);
                if now == 0 && observation.text.contains("[exit code 0]") {
                    self.phase = Phase::Done;
                    return Action::Submit;
                }
                if now < self.best_failures {
                    // Progress (a second bug, or half of one): keep it, read the new output.
                    self.best_failures = now;
                    self.output = observation.text.clone();
                    self.pending = None;
                    return self.next_try(view);
                }
                match self.pending.take() {
                    Some((path, content)) => {
                        self.reverting = true;
                        Action::Create { path, content }
                    }
                    None => self.next_try(view),
                }
            }
            Phase::Done => Action::Submit,
        }
    }
}

impl Drop for PolicySolver {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.key.clone(), std::mem::take(&mut self.decisions)));
        }
    }
}

/// A factory of policy solvers over frozen weights; their decisions go to `sink`.
pub fn solver_factory(
    net: Arc<PolicyNet>,
    max_tries: usize,
    sink: Option<DecisionSink>,
) -> AgentFactory {
    Arc::new(move |task: &Task, seed, index| {
        Ok(Box::new(PolicySolver::new(
            net.clone(),
            seed,
            format!("{}#{index}", task.id),
            max_tries,
            sink.clone(),
        )) as Box<dyn Agent>)
    })
}
