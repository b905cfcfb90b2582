//! `tansu` — the local platform in one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tansu_dev::{Stack, StackOptions};

// The allocator of the tansu-gateway and tansu-identity binaries (their main.rs say why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tansu",
    about = "Tansu: the multi-tenant identity and access platform, locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service in this process (SQLite and local storage under the data dir).
    Up {
        /// Where state is kept; reused on the next start.
        #[arg(long, env = "TANSU_DATA_DIR", default_value = ".tansu")]
        data_dir: PathBuf,
        /// Platform config file (TOML); `TANSU_<SECTION>__<KEY>` variables override it.
        #[arg(long, env = "TANSU_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tansu: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _telemetry = tansu_shared::telemetry::init("tansu");
        match cli.command {
            Command::Up { data_dir, config } => match up(data_dir, config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tansu: {e:#}");
                    ExitCode::FAILURE
                }
            },
        }
    })
}

async fn up(data_dir: PathBuf, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let mut stack = Stack::start(StackOptions {
        data_dir: data_dir.clone(),
        config_file,
        ephemeral: false,
    })
    .await?;
    stack.wait_ready(Duration::from_secs(60)).await?;
    let g = stack.gateway;
    println!();
    println!("Tansu is up (data in {}).", data_dir.display());
    println!("  gateway     https://{g}/health");
    if let Some(h) = stack.gateway_http {
        println!("              http://{h}/ redirects to https");
    }
    if let Some(m) = stack.gateway_internal {
        println!("              http://{m}/metrics (internal only)");
    }
    println!("  issuer      {}", stack.issuer);
    println!(
        "  discovery   {}.well-known/openid-configuration",
        stack.issuer
    );
    println!("  database    https://{g}/db/");
    println!("  storage     https://{g}/storage/");
    println!("  dashboard   https://{g}/dashboard/");
    if let Some(dir) = &stack.mail_dir {
        println!(
            "  mail        {} (one .eml file per message)",
            dir.display()
        );
    }
    for (name, addr) in &stack.services {
        println!("  ({name} directly at http://{addr})");
    }
    println!(
        "The certificate is self-signed: {}/tls/cert.pem (curl -k or --cacert).",
        data_dir.display()
    );
    println!("Press Ctrl-C to stop.");
    stack
        .run_until(tansu_shared::server::shutdown_signal())
        .await?;
    println!("Tansu stopped.");
    Ok(())
}
