//! `tansu-bench-identity`: identity as the benchmarks run it, and the raw Argon2id rate
//! ([`tansu_bench::identity_rig`]), on the allocator the `tansu-identity` binary ships with.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use tansu_bench::identity_rig::{IdentityCommand, raw_argon2_rate, serve_identity};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let done = match IdentityCommand::parse() {
        IdentityCommand::ServeIdentity(args) => tansu_shared::server::runtime(None)
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve_identity(args))),
        IdentityCommand::RawArgon2 { millis } => {
            raw_argon2_rate(Duration::from_millis(millis)).map(|rate| println!("{rate}"))
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tansu-bench-identity: {e:#}");
            ExitCode::FAILURE
        }
    }
}
