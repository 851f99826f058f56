//! The policy as a solver agent: it restores the specification's tests, runs them, and then,
//! within a budget of tries, samples a repair candidate, writes it, runs the tests, keeps it
//! when fewer tests fail and reverts it otherwise; it submits once the tests pass or the budget
//! is spent. Every choice is recorded for training.

use super::features::{content_key, solver_choice, Choice};
use super::model::{candidate_logps, Decision, PolicyNet};
use crate::agents::{Agent, AgentFactory, Chooser, Rng, Try, TryLoop, View};
use crate::episode::{Action, Observation, Task};
use std::collections::BTreeSet;
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

/// The policy's repairs: sampled from the network over the solver's candidate set, never the
/// same file content twice; every choice is recorded.
struct PolicyChooser {
    net: Arc<PolicyNet>,
    rng: Rng,
    output: String,
    tried: BTreeSet<(String, u64)>,
    decisions: Vec<Decision>,
}

impl Chooser for PolicyChooser {
    fn plan(&mut self, output: &str, _: &View) {
        self.output = output.to_owned();
    }

    fn next(&mut self, view: &View) -> Option<Try> {
        let choice = solver_choice(view.state, &self.output, &self.tried, &mut self.rng);
        let (index, logp) = sample(&self.net, &choice, &mut self.rng, false)?;
        let candidate = &choice.candidates[index];
        let previous = view
            .state
            .file(&candidate.path)
            .and_then(|c| String::from_utf8(c.to_vec()).ok())?;
        let content = candidate.edit.apply(&previous);
        let path = candidate.path.clone();
        self.tried.insert((path.clone(), content_key(&content)));
        self.decisions.push(Decision {
            allowed: vec![true; choice.candidates.len()],
            choice,
            chosen: index,
            logp,
        });
        Some(Try {
            path,
            content,
            previous,
        })
    }
}

/// A solver driven by the policy network.
pub struct PolicySolver {
    chooser: PolicyChooser,
    tries: TryLoop,
    key: String,
    sink: Option<DecisionSink>,
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
            chooser: PolicyChooser {
                net,
                rng: Rng(seed ^ 0x534f_4c56),
                output: String::new(),
                tried: BTreeSet::new(),
                decisions: Vec::new(),
            },
            tries: TryLoop::new(max_tries.max(1)),
            key,
            sink,
        }
    }
}

impl Agent for PolicySolver {
    fn name(&self) -> &str {
        "policy"
    }

    fn act(&mut self, observation: &Observation, view: &View) -> Action {
        self.tries.act(&mut self.chooser, observation, view)
    }
}

impl Drop for PolicySolver {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push((
                self.key.clone(),
                std::mem::take(&mut self.chooser.decisions),
            ));
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
