//! What plays an episode: the [`Agent`] trait both roles' agents implement, what an agent
//! sees when it acts ([`View`]), and what it is made for ([`Assignment`]). The built-in agents
//! live in `crate::agents`; learned policies implement the same trait.

use super::{Action, Observation, Task};
use crate::corpus::OpenProject;
use crate::snapshot::Snapshot;
use crate::testrun::TestCommand;

/// What an agent may look at when it acts.
pub struct View<'a> {
    /// The prompt of the episode: the solver's specification, or the injector's instructions.
    pub specification: &'a str,
    /// The repository as it is now.
    pub state: &'a Snapshot,
    /// The test command of the task or project (what "run the tests" means here).
    pub test_command: &'a TestCommand,
    /// Turns taken so far.
    pub turn: u32,
}

/// An agent: picks the next action from the last observation.
pub trait Agent: Send {
    /// The agent's name in logs.
    fn name(&self) -> &str;
    /// The next action.
    fn act(&mut self, observation: &Observation, view: &View) -> Action;
    /// True when `act` waits on I/O (a remote model), so the scheduler runs it off its async
    /// workers.
    fn blocks(&self) -> bool {
        false
    }
    /// What the episode used (an LLM's tokens), for the episode log.
    fn usage(&self) -> Option<serde_json::Value> {
        None
    }
    /// A harness failure behind the last action (the model could not be reached): the
    /// episode is then an error, not a result.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// What an agent is made for: a solver attempt at a task, or an injector episode in a
/// project. Agents that know the answer (the oracle) exist only for the first.
#[derive(Clone, Copy)]
pub enum Assignment<'a> {
    /// Repair this bug.
    Solve(&'a Task),
    /// Inject a bug into this project.
    Inject(&'a OpenProject),
}

impl Assignment<'_> {
    /// The task's or the project's name, for agents that name their episodes.
    pub fn name(&self) -> &str {
        match self {
            Assignment::Solve(task) => &task.id,
            Assignment::Inject(project) => &project.name,
        }
    }
}
