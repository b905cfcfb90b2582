//! `tansu-bench-gateway`: the gateway the benchmarks measure ([`tansu_bench::gateway_rig`]),
//! on the allocator the `tansu-gateway` binary ships with.

use std::process::ExitCode;

use clap::Parser as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = tansu_bench::gateway_rig::ServeGatewayArgs::parse();
    let served = tansu_shared::server::runtime(None)
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(tansu_bench::gateway_rig::serve_gateway(args)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tansu-bench-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
