//! The language model as an episode's agent: one ChatML conversation per episode, fed through
//! the episode's own KV cache. Each observation becomes a tool response, each turn is sampled
//! and its first tool call becomes the action; a turn without a usable call is answered with
//! the error as the tool's response (as the HTTP API answers a malformed call), up to a
//! budget. The whole token stream, which tokens the model wrote and their log-probabilities
//! are the episode's [`Trajectory`], left in a sink for training when the episode ends.

use super::batch::Generator;
use super::chat::{opening, parse_tool_call, tool_response};
use super::generate::{Decoding, Sampling, TurnEnd};
use super::model::KvCache;
use crate::agents::llm::{system_prompt, MAX_FUMBLES};
use crate::agents::Rng;
use crate::episode::tools::{definitions, Profile};
use crate::episode::{Action, Agent, Observation, View};
use std::sync::{Arc, Mutex};

/// One episode's tokens as the model saw and wrote them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectory {
    /// Every token of the conversation, in order.
    pub tokens: Vec<u32>,
    /// Per token: the model wrote it (trained on) or not (prompt, observations: masked).
    pub own: Vec<bool>,
    /// Per token: its log-probability when sampled (0 where not the model's).
    pub logprobs: Vec<f32>,
    /// Turns the model took.
    pub turns: u32,
    /// Turns whose text held no usable tool call.
    pub fumbles: u32,
}

impl Trajectory {
    fn push(&mut self, tokens: &[u32], logprobs: Option<&[f32]>) {
        self.tokens.extend_from_slice(tokens);
        self.own
            .extend(std::iter::repeat_n(logprobs.is_some(), tokens.len()));
        match logprobs {
            Some(lp) => self.logprobs.extend_from_slice(lp),
            None => self.logprobs.extend(std::iter::repeat_n(0.0, tokens.len())),
        }
    }

    /// Tokens the model wrote.
    pub fn own_tokens(&self) -> usize {
        self.own.iter().filter(|o| **o).count()
    }
}

/// Where finished episodes leave their trajectories: `(episode key, trajectory)`.
pub type TrajectorySink = Arc<Mutex<Vec<(String, Trajectory)>>>;

/// How the model acts in episodes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActSettings {
    /// How tokens are drawn.
    pub sampling: Sampling,
    /// The tools it is given.
    pub tools: Profile,
    /// Most tokens of one conversation (prompt, observations and turns); at the limit the
    /// episode is submitted as it is.
    pub max_context: usize,
    /// Most turns generated together (one batched pass per token).
    #[serde(default = "default_batch")]
    pub max_batch: usize,
}

fn default_batch() -> usize {
    16
}

impl Default for ActSettings {
    fn default() -> Self {
        ActSettings {
            sampling: Sampling::default(),
            tools: Profile::Spar,
            max_context: 8192,
            max_batch: default_batch(),
        }
    }
}

/// An episode played by the model.
pub struct LmAgent {
    generator: Arc<Generator>,
    settings: ActSettings,
    cache: KvCache,
    trajectory: Trajectory,
    /// The last turn ended with the model's `<|im_end|>`.
    closed: bool,
    /// The last token drawn, which the cache has not seen yet (it is fed with the next
    /// context, so the cache always matches the trajectory).
    unfed: Option<u32>,
    rng: Rng,
    sink: Option<(String, TrajectorySink)>,
    error: Option<String>,
    /// Time spent sampling, ms (the rest of the episode's wall time is the engine's).
    generate_ms: f64,
}

impl LmAgent {
    /// A fresh conversation drawing with `seed`; its trajectory goes to `sink` under `key`
    /// when the agent is dropped.
    pub fn new(
        generator: Arc<Generator>,
        settings: ActSettings,
        seed: u64,
        sink: Option<(String, TrajectorySink)>,
    ) -> Self {
        LmAgent {
            generator,
            settings,
            cache: KvCache::default(),
            trajectory: Trajectory::default(),
            closed: false,
            unfed: None,
            rng: Rng(seed),
            sink,
            error: None,
            generate_ms: 0.0,
        }
    }

    /// The conversation so far.
    pub fn trajectory(&self) -> &Trajectory {
        &self.trajectory
    }

    /// Feeds `text` and samples one turn: its text, or `None` when the context is full or
    /// the model failed (recorded as the harness error).
    fn turn(&mut self, text: &str) -> Option<String> {
        let chat = &self.generator.policy().chat;
        let context = match chat.encode(text) {
            Ok(ids) => ids,
            Err(e) => {
                self.error = Some(e.to_string());
                return None;
            }
        };
        let used = self.cache.len() + usize::from(self.unfed.is_some());
        if used + context.len() + 1 >= self.settings.max_context {
            return None;
        }
        let mut sampling = self.settings.sampling;
        let room = self.settings.max_context - used - context.len();
        sampling.max_turn_tokens = sampling.max_turn_tokens.min(room);
        let cache = std::mem::take(&mut self.cache);
        let rng = Rng(self.rng.0);
        let feed: Vec<u32> = self.unfed.iter().chain(&context).copied().collect();
        let turn = Decoding::new(feed, cache, sampling, chat.stops.clone(), rng);
        let started = std::time::Instant::now();
        let done = self.generator.run(turn);
        self.generate_ms += started.elapsed().as_secs_f64() * 1e3;
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        (self.cache, self.rng) = (done.cache, done.rng);
        let turn = done.turn;
        if turn.tokens.is_empty() {
            // The model's context is full: nothing was fed, the episode ends here.
            return None;
        }
        self.unfed = turn.tokens.last().copied();
        self.trajectory.push(&context, None);
        self.trajectory.push(&turn.tokens, Some(&turn.logprobs));
        self.trajectory.turns += 1;
        self.closed = turn.end == TurnEnd::Stop;
        self.generator.policy().chat.decode(&turn.tokens).ok()
    }
}

impl Agent for LmAgent {
    fn name(&self) -> &str {
        "lm"
    }

    fn act(&mut self, observation: &Observation, _: &View) -> Action {
        let shown = observation.for_model();
        let mut text = if self.trajectory.tokens.is_empty() {
            let tools = definitions(self.settings.tools);
            opening(&system_prompt(self.settings.tools), &tools, &shown)
        } else {
            tool_response(&shown, self.closed)
        };
        for _ in 0..MAX_FUMBLES {
            let Some(answer) = self.turn(&text) else {
                return Action::Submit;
            };
            match parse_tool_call(self.settings.tools, &answer) {
                Ok(action) => return action,
                Err(why) => {
                    self.trajectory.fumbles += 1;
                    text = tool_response(&format!("error: {why}"), self.closed);
                }
            }
        }
        Action::Submit
    }

    fn blocks(&self) -> bool {
        // Sampling takes the CPU (or waits on the GPU) for far longer than a sandbox step.
        true
    }

    fn usage(&self) -> Option<serde_json::Value> {
        let t = &self.trajectory;
        Some(serde_json::json!({
            "prompt_tokens": t.tokens.len() - t.own_tokens(),
            "completion_tokens": t.own_tokens(),
            "turns": t.turns,
            "fumbles": t.fumbles,
            "generate_ms": self.generate_ms,
        }))
    }

    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
}

impl Drop for LmAgent {
    fn drop(&mut self) {
        if let Some((key, sink)) = self.sink.take() {
            let trajectory = std::mem::take(&mut self.trajectory);
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((key, trajectory));
        }
    }
}

/// A factory of [`LmAgent`]s for the scheduler: each episode's trajectory goes to `sink`
/// under the key its record carries (`TASK#ATTEMPT`, or `PROJECT@inject#INDEX`).
pub fn factory(
    generator: Arc<Generator>,
    settings: ActSettings,
    sink: Option<TrajectorySink>,
) -> crate::agents::AgentFactory {
    Arc::new(move |assignment, seed, index| {
        let key = match assignment {
            crate::episode::Assignment::Solve(task) => format!("{}#{index}", task.id),
            crate::episode::Assignment::Inject(project) => {
                format!("{}@inject#{index}", project.name)
            }
        };
        let sink = sink.clone().map(|s| (key, s));
        let agent = LmAgent::new(generator.clone(), settings.clone(), seed, sink);
        Ok(Box::new(agent) as Box<dyn Agent>)
    })
}
