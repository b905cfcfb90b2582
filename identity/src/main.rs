// mimalloc, as the gateway: it gives Argon2's 19 MiB working memory transparent huge pages
// (it advises them for its arenas; THP `madvise` or `always`), so a password hash that the
// service's other threads interrupt does not lose its TLB entries for thousands of 4 KiB pages
// (BENCHMARKS.md: logins/s next to the raw Argon2id rate).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tansu_shared::server::service_main("identity", |config: tansu_identity::Config| {
        tansu_identity::serve(config, tansu_shared::server::shutdown_signal())
    })
}
