//! An LLM that plays either SSR role through an OpenAI-compatible chat-completions endpoint
//! with tool calling (OpenAI, vLLM, SGLang, llama.cpp, Ollama, ...).
//!
//! The model gets the episode's first observation (the solver's specification prompt, or the
//! injector's rules) and spar's tools as function definitions; each of its tool calls becomes
//! one [`Action`], whose observation goes back as the tool's answer. Requests are retried with
//! exponential backoff on 429 and 5xx answers and on transport errors (honouring
//! `Retry-After`); token usage is summed per episode. The client is blocking: the scheduler
//! runs agents that block off its async workers, so episodes make their requests in parallel.

use super::{Agent, View};
use crate::episode::tools::{definitions, parse_call, Profile};
use crate::episode::{Action, Observation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What the model is told before the first observation, in the words of its tool profile.
pub fn system_prompt(profile: Profile) -> String {
    let (tests, done) = match profile {
        Profile::Spar => (
            "with the `bash` tool (`python -m pytest -q`) or the `run` tool",
            "submit",
        ),
        Profile::SweAgent => ("with the `bash` tool (`python -m pytest -q`)", "submit"),
        Profile::R2e => (
            "with the `execute_bash` tool (`python -m pytest -q`)",
            "finish",
        ),
    };
    format!(
        "You are a careful software engineer working in a Python repository, mounted at /repo, \
         through tools. Call exactly one tool per turn. Read the code before you change it, run \
         the tests {tests}, and call `{done}` when you are done."
    )
}

/// Consecutive answers without a usable tool call before the episode is submitted as it is
/// (the same for every model agent).
pub const MAX_FUMBLES: usize = 3;

/// Where the model is and how to talk to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmSettings {
    /// The API base URL, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The environment variable holding the API key (none: no `Authorization` header).
    pub api_key_env: Option<String>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per answer.
    pub max_tokens: u32,
    /// Retries of one request on 429, 5xx and transport errors.
    pub max_retries: u32,
    /// The first backoff; it doubles with every retry.
    pub backoff: Duration,
    /// One request's time limit.
    pub timeout: Duration,
    /// The tools the model is given and calls.
    #[serde(default)]
    pub tools: Profile,
}

impl LlmSettings {
    /// Settings for `model` at `base_url`, with the defaults for the rest.
    pub fn new(base_url: &str, model: &str) -> Self {
        LlmSettings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key_env: None,
            temperature: 0.7,
            max_tokens: 2048,
            max_retries: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(300),
            tools: Profile::Spar,
        }
    }
}

/// Why the model gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The API key's variable is not set.
    #[error("the API key variable {0} is not set")]
    MissingKey(String),
    /// The endpoint refused the request (after retries, for retryable statuses).
    #[error("the endpoint answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The answer's body, cut short.
        body: String,
    },
    /// The endpoint could not be reached (after retries).
    #[error("cannot reach the endpoint")]
    Transport(#[source] Box<ureq::Transport>),
    /// The answer is not a chat completion (its text, cut short).
    #[error("the answer is not a chat completion: {0}")]
    Reply(String),
    /// The answer's body is not JSON.
    #[error("the answer is not JSON")]
    NotJson(#[source] std::io::Error),
}

/// Tokens and requests of one episode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, summed over requests.
    pub prompt_tokens: u64,
    /// Completion tokens, summed.
    pub completion_tokens: u64,
    /// Requests answered.
    pub requests: u32,
    /// Requests retried.
    pub retries: u32,
}

/// A chat-completions client, shared by every episode.
pub struct LlmClient {
    settings: LlmSettings,
    key: Option<String>,
    http: ureq::Agent,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("LlmClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client; reads the API key from its variable now, so a missing key fails at once.
    pub fn new(settings: LlmSettings) -> Result<LlmClient, LlmError> {
        let key = match &settings.api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| LlmError::MissingKey(var.clone()))?,
            ),
            None => None,
        };
        let http = ureq::AgentBuilder::new().timeout(settings.timeout).build();
        Ok(LlmClient {
            settings,
            key,
            http,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// One chat completion over `messages` with spar's tools; retries what can be retried.
    pub fn complete(&self, messages: &[Value], usage: &mut Usage) -> Result<Value, LlmError> {
        let body = json!({
            "model": self.settings.model,
            "messages": messages,
            "tools": definitions(self.settings.tools),
            "tool_choice": "auto",
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        });
        let url = format!("{}/chat/completions", self.settings.base_url);
        let mut wait = self.settings.backoff;
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(&url);
            if let Some(key) = &self.key {
                request = request.set("Authorization", &format!("Bearer {key}"));
            }
            let failure = match request.send_json(&body) {
                Ok(answer) => {
                    let reply: Value = answer.into_json().map_err(LlmError::NotJson)?;
                    usage.requests += 1;
                    let used = &reply["usage"];
                    usage.prompt_tokens += used["prompt_tokens"].as_u64().unwrap_or(0);
                    usage.completion_tokens += used["completion_tokens"].as_u64().unwrap_or(0);
                    return Ok(reply);
                }
                Err(ureq::Error::Status(status, answer)) => {
                    let retry_after = answer
                        .header("retry-after")
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 120.0)));
                    let text = answer.into_string().unwrap_or_default();
                    let error = LlmError::Status {
                        status,
                        body: text.chars().take(500).collect(),
                    };
                    if status != 429 && status < 500 {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(ureq::Error::Transport(t)) => (LlmError::Transport(Box::new(t)), None),
            };
            let (error, retry_after) = failure;
            if attempt >= self.settings.max_retries {
                return Err(error);
            }
            attempt += 1;
            usage.retries += 1;
            std::thread::sleep(retry_after.unwrap_or(wait));
            wait = wait.saturating_mul(2);
        }
    }
}

/// An agent played by the model: one conversation per episode.
pub struct LlmAgent {
    client: Arc<LlmClient>,
    messages: Vec<Value>,
    /// The id of the tool call whose observation comes next.
    pending_call: Option<String>,
    usage: Usage,
    error: Option<String>,
}

impl LlmAgent {
    /// A fresh conversation.
    pub fn new(client: Arc<LlmClient>) -> Self {
        let prompt = system_prompt(client.settings().tools);
        LlmAgent {
            client,
            messages: vec![json!({"role": "system", "content": prompt})],
            pending_call: None,
            usage: Usage::default(),
            error: None,
        }
    }

    fn tell(&mut self, text: &str) {
        match self.pending_call.take() {
            Some(id) => self
                .messages
                .push(json!({"role": "tool", "tool_call_id": id, "content": text})),
            None => self.messages.push(json!({"role": "user", "content": text})),
        }
    }
}

impl Agent for LlmAgent {
    fn name(&self) -> &str {
        "llm"
    }

    fn act(&mut self, observation: &Observation, _: &View) -> Action {
        self.tell(&observation.for_model());
        for _ in 0..MAX_FUMBLES {
            let reply = match self.client.complete(&self.messages, &mut self.usage) {
                Ok(reply) => reply,
                Err(e) => {
                    // A harness failure, not the model's: the scheduler records it as an error.
                    self.error = Some(crate::protocol::validate::error_chain(&e));
                    return Action::Submit;
                }
            };
            let message = &reply["choices"][0]["message"];
            if !message.is_object() {
                self.error = Some(
                    LlmError::Reply(reply.to_string().chars().take(300).collect()).to_string(),
                );
                return Action::Submit;
            }
            let call = message["tool_calls"]
                .as_array()
                .and_then(|c| c.first())
                .cloned();
            let Some(call) = call else {
                self.messages
                    .push(json!({"role": "assistant", "content": message["content"]}));
                self.messages.push(json!({"role": "user", "content":
                    "Call one of the tools; call submit when you are done."}));
                continue;
            };
            let id = call["id"].as_str().unwrap_or("call").to_owned();
            // Only the first call of an answer runs: keep the conversation consistent with that.
            self.messages.push(json!({
                "role": "assistant",
                "content": message["content"],
                "tool_calls": [call],
            }));
            match parse_call(self.client.settings().tools, &call) {
                Ok(action) => {
                    self.pending_call = Some(id);
                    return action;
                }
                Err(e) => {
                    self.messages.push(
                        json!({"role": "tool", "tool_call_id": id, "content": format!("error: {e}")}),
                    );
                }
            }
        }
        Action::Submit
    }

    fn blocks(&self) -> bool {
        true
    }

    fn usage(&self) -> Option<Value> {
        serde_json::to_value(&self.usage).ok()
    }

    fn failure(&self) -> Option<String> {
        self.error.clone()
    }
}
