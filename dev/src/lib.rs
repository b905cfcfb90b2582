//! `tansu-dev` — the one-command local stack (`tansu up`), which the end-to-end tests in
//! `dev/tests` also start, on ephemeral ports. The benchmarks and their rigs are the
//! `tansu-bench` crate (`dev/bench/`).
//!
//! All services run in one process, each on its own listener exactly as they would as separate
//! processes: they talk to each other over HTTP (the gateway proxies to the others over
//! loopback), share only `tansu-shared`, and keep their state under one data directory
//! (default `./.tansu`), so stopping and starting again loses nothing.
#![forbid(unsafe_code)]

pub mod stack;
pub mod tls;

pub use stack::{Stack, StackOptions};
