//! spar: a self-play SWE-RL engine that runs real Python repositories' test suites inside
//! Wasmtime sandboxes.
//!
//! The layers, each depending only on those above it:
//! - [`bytes`]: file contents shared without copying (heap bytes, or a mapped cache file);
//! - [`snapshot`]: immutable, shareable repository file trees and the changes between them;
//! - [`diff`]: unified diffs between snapshots: render, parse, apply, reverse;
//! - [`sandbox`]: the Wasmtime/WASI sandbox that runs a guest over in-memory trees with limits;
//! - [`corpus`]: corpus projects and their manifests;
//! - [`guest`]: the CPython-for-WASI guest runtime: fetching, verifying and preparing it;
//! - [`testrun`]: running a repository's test suite in the guest and parsing per-test results;
//! - [`protocol`]: SSR bug artifacts, the seven consistency checks, the specification prompt,
//!   SWE-bench export;
//! - [`pyedit`]: Python parse trees (tree-sitter) and minimal text edits: mutation operators,
//!   removals, test deletion;
//! - [`inject`]: the built-in injectors (procedural, removal, history, mixed);
//! - [`episode`]: one Gymnasium-shaped environment for both roles, the agent trait, episode
//!   records, grading and rewards;
//! - [`agents`]: the built-in agents: oracle, random, heuristic, replay, LLM;
//! - [`rollout`]: the tokio scheduler and its one episode driver;
//! - [`selfplay`]: the self-play loop's rounds;
//! - [`policy`]: the Candle policy network that plays both roles, its features and its agent;
//! - [`lm`]: the language-model policy (a local Qwen2/Qwen3 checkpoint acting through the
//!   tools) and its GRPO training;
//! - [`train`], [`eval`], [`plot`]: self-play training from sandbox rewards, held-out
//!   evaluation, learning curves;
//! - [`serve`]: the episodes as an HTTP/JSON server (sessions, OpenAI tool definitions,
//!   OpenEnv routes) for RL frameworks and LLM agents outside spar, and the router that puts
//!   many such servers behind one address;
//! - [`native`]: the host virtual environment native baselines run in;
//! - [`bench`], [`demo`]: the measurements and the demo the CLI offers;
//! - [`cli`]: the command line: clap types resolved once into plain settings per command, one
//!   module per command, flag hints for the library's typed errors.

#![warn(missing_docs)]

pub mod agents;
pub mod bench;
pub mod bytes;
pub mod cli;
pub mod corpus;
pub mod demo;
pub mod diff;
pub mod episode;
pub mod eval;
mod fsutil;
pub mod guest;
pub mod inject;
pub mod lm;
pub mod native;
mod par;
pub mod pip;
pub mod plot;
pub mod policy;
pub mod protocol;
pub mod pyedit;
pub mod rollout;
pub mod sandbox;
pub mod selfplay;
pub mod serve;
pub mod snapshot;
pub mod testrun;
pub mod train;
