//! The policy as a solver agent: it restores the specification's tests, runs them, and then,
//! within a budget of tries, samples a repair candidate, writes it, runs the tests, keeps it
//! when fewer tests fail and reverts it otherwise; it submits once the tests pass or the budget
//! is spent. Every choice is recorded for training.

use super::features::{content_key, solver_choice, Choice};
use super::model::{candidate_logps, Decision, PolicyNet};
use crate::agents::{Agent, AgentFactory, Assignment, Chooser, Rng, Try, TryLoop, View};
use crate::episode::{Action, Observation};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Where finished episodes leave their decisions: `(episode key "TASK#ATTEMPT", decisions)`.
pub type DecisionSink = Arc<Mutex<Vec<(String, Vec<Decision>)>>>;

/// Samples one of the `allowed` candidates of `choice` from the policy:
/// `(index, log-probability)`. `greedy` takes the most likely one instead. `None` when no
/// candidate is allowed.
pub fn sample(
    net: &PolicyNet,
    choice: &Choice,
    allowed: &[bool],
    rng: &mut Rng,
    greedy: bool,
) -> Option<(usize, f32)> {
    if !allowed.iter().any(|a| *a) {
        return None;
    }
    let logps = candidate_logps(net, choice, allowed).ok()?;
    let index = if greedy {
        logps
            .iter()
            .enumerate()
            .filter(|(i, _)| allowed[*i])
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)?
    } else {
        let u = rng.unit() as f32;
        let mut acc = 0.0;
        let mut pick = None;
        for (i, lp) in logps.iter().enumerate() {
            if !allowed[i] {
                continue;
            }
            pick = Some(i);
            acc += lp.exp();
            if u < acc {
                break;
            }
        }
        pick?
    };
    Some((index, logps[index]))
}

/// The policy's repairs: sampled from the network over the solver's candidate set for the
/// latest failing output, never the same file content twice; every choice is recorded.
struct PolicyChooser {
    net: Arc<PolicyNet>,
    rng: Rng,
    choice: Option<Arc<Choice>>,
    tried: BTreeSet<(String, u64)>,
    decisions: Vec<Decision>,
}

impl Chooser for PolicyChooser {
    fn plan(&mut self, output: &str, view: &View) {
        self.choice = Some(Arc::new(solver_choice(view.state, output)));
    }

    fn next(&mut self, view: &View) -> Option<Try> {
        let choice = self.choice.clone()?;
        // A candidate is out once its result is already known: tried, or the same text as one
        // that was (two edits can give one file content).
        let contents: Vec<Option<String>> = choice
            .candidates
            .iter()
            .map(|c| {
                let text = view.state.file(&c.path)?;
                Some(c.edit.apply(std::str::from_utf8(&text).ok()?))
            })
            .collect();
        let allowed: Vec<bool> = choice
            .candidates
            .iter()
            .zip(&contents)
            .map(|(c, content)| {
                content.as_ref().is_some_and(|content| {
                    !self.tried.contains(&(c.path.clone(), content_key(content)))
                })
            })
            .collect();
        let (index, logp) = sample(&self.net, &choice, &allowed, &mut self.rng, false)?;
        let candidate = &choice.candidates[index];
        let previous = view
            .state
            .file(&candidate.path)
            .and_then(|c| String::from_utf8(c.to_vec()).ok())?;
        let content = contents[index].clone()?;
        let path = candidate.path.clone();
        self.tried.insert((path.clone(), content_key(&content)));
        self.decisions.push(Decision {
            allowed,
            choice: (*choice).clone(),
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
                choice: None,
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
    Arc::new(move |assignment: Assignment, seed, index| {
        Ok(Box::new(PolicySolver::new(
            net.clone(),
            seed,
            format!("{}#{index}", assignment.name()),
            max_tries,
            sink.clone(),
        )) as Box<dyn Agent>)
    })
}
