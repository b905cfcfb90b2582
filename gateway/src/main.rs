// mimalloc: 12.7 % fewer instructions per proxied request than glibc's allocator (callgrind,
// dev/bench/runs/2026-11-26-gateway-allocations.md); peak resident memory through a 1 GiB
// stream stays far under the 64 MiB bound (gateway/tests/streaming.rs runs on the same
// allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("gateway", |config: tansu_gateway::Config| {
        tansu_gateway::serve(config, tansu_shared::server::shutdown_signal())
    })
}
