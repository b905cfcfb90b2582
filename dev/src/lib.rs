//! `tansu-dev` — the one-command local stack (`tansu up`) and the in-process test support that
//! starts every service on ephemeral ports.
//!
//! All services run in one process, each on its own listener exactly as they would as separate
//! processes: they talk to each other over HTTP (the gateway proxies to the others over
//! loopback), share only `tansu-shared`, and keep their state under one data directory
//! (default `./.tansu`), so stopping and starting again loses nothing.
#![forbid(unsafe_code)]

pub mod bench_gateway;
pub mod bench_identity;
pub mod stack;
pub mod storage_rig;
pub mod tls;

pub use stack::{Stack, StackOptions};
