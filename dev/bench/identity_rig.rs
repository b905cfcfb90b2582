//! Identity as the benchmarks run it: the executable `tansu-bench-identity`
//! (dev/bench/identity_main.rs) serves it and measures the raw Argon2id rate the login
//! benchmark compares with. It is an executable of its own so that both run on the allocator
//! the `tansu-identity` binary ships with (mimalloc: Argon2's 19 MiB working memory gets
//! transparent huge pages), the hash inside the service and the raw loop on the same memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::gateway_rig::{CHILD_LIFETIME, exit_with_parent};

/// The secret of dev mode's `tansu-dashboard` client in the benchmarks' identity.
pub const DEV_SECRET: &str = "bench-dev-client-secret-0123456789";

/// The password of the benchmarks' users (and of the raw Argon2id loop).
pub const PASSWORD: &str = "correct horse battery staple 42";

#[derive(clap::Parser)]
#[command(name = "tansu-bench-identity")]
pub enum IdentityCommand {
    /// Serves identity on a loopback port; prints `LISTEN <addr>`, exits when stdin closes.
    ServeIdentity(ServeIdentityArgs),
    /// Prints the raw Argon2id verification rate (per second, one thread per CPU).
    RawArgon2 {
        #[arg(long)]
        millis: u64,
    },
}

#[derive(clap::Args)]
pub struct ServeIdentityArgs {
    #[arg(long)]
    pub database_url: String,
    #[arg(long)]
    pub data_dir: PathBuf,
    /// identity's `database_max_connections` (0: its default).
    #[arg(long, default_value_t = 0)]
    pub database_max_connections: u32,
}

/// The identity service as the benchmark runs it: the production code path with dev mode's
/// seeds (the `tansu-dashboard` client with `admin.full`, used only to create the benchmark's
/// clients, tenant and users through the admin API).
pub async fn serve_identity(args: ServeIdentityArgs) -> anyhow::Result<()> {
    exit_with_parent(CHILD_LIFETIME);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = tansu_identity::Config {
        listen: addr.to_string(),
        issuer: format!("http://{addr}/"),
        data_dir: args.data_dir,
        database_url: tansu_shared::config::Secret::new(args.database_url),
        database_max_connections: args.database_max_connections,
        dev_mode: true,
        dev_client_secret: tansu_shared::config::Secret::new(DEV_SECRET),
        // Set, so dev mode does not print a generated one; the benchmark never signs in as it.
        dev_admin_password: tansu_shared::config::Secret::new(
            tansu_identity::crypto::random_secret()?,
        ),
        ..tansu_identity::Config::default()
    };
    println!("LISTEN {addr}");
    tansu_identity::serve_on(listener, config, std::future::pending()).await
}

/// Raw rate of `op` on every core: one thread per CPU, each calling `op` in a loop for
/// `duration`. Operations per second, all threads together.
pub fn raw_rate(duration: Duration, op: impl Fn() + Send + Sync + 'static) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let op = Arc::new(op);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (op, count, stop) = (op.clone(), count.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    op();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Argon2id verifications per second with the service's parameters and code, on every core.
pub fn raw_argon2_rate(duration: Duration) -> anyhow::Result<f64> {
    let phc = tansu_identity::passwords::hash_blocking(PASSWORD)?;
    anyhow::ensure!(tansu_identity::passwords::verify_blocking(PASSWORD, &phc));
    Ok(raw_rate(duration, move || {
        let _ = tansu_identity::passwords::verify_blocking(PASSWORD, &phc);
    }))
}
