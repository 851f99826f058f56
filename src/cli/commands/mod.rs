//! One module per command: each resolves its flags into plain settings (validating them and
//! building what it needs once, before any sandbox work) and then executes.

pub mod bench;
pub mod corpus;
pub mod demo;
pub mod eval;
pub mod export;
pub mod inject;
pub mod plot;
pub mod route;
pub mod run;
pub mod selfplay;
pub mod serve;
pub mod setup;
pub mod test;
pub mod train;
pub mod validate;
