//! spar: a self-play SWE-RL engine that runs real Python repositories' test suites inside
//! Wasmtime sandboxes.
//!
//! The layers, each depending only on those above it:
//! - [`snapshot`]: immutable, shareable repository file trees and the changes between them;
//! - [`sandbox`]: the Wasmtime/WASI sandbox that runs a guest over in-memory trees with limits;
//! - [`corpus`]: corpus projects and their manifests;
//! - [`guest`]: the CPython-for-WASI guest runtime: fetching, verifying and preparing it;
//! - [`testrun`]: running a repository's test suite in the guest and parsing per-test results;
//! - [`bench`], [`demo`]: the measurements and the demo the CLI offers;
//! - [`cli`]: command-line parsing, resolved into plain settings for the layers above.

pub mod bench;
pub mod cli;
pub mod corpus;
pub mod demo;
mod fsutil;
pub mod guest;
mod par;
pub mod pip;
pub mod sandbox;
pub mod snapshot;
pub mod testrun;
