//! The processes under test: their peak memory and CPU time from `/proc`, and children that
//! are always stopped (on success, on error, and when the benchmark itself dies: a child
//! started by [`spawn_self`] exits when its stdin closes).

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Peak resident set (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU time of `pid` (all its threads).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are at 11 and 12 after the name and state.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// The pids whose parent is `pid` (nginx's workers under its master).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// A process (or a master and its workers) whose resources are reported.
#[derive(Debug, Clone)]
pub struct Measured {
    pub pids: Vec<u32>,
}

impl Measured {
    /// Sum of the processes' peaks (an upper bound for several processes: shared pages are
    /// counted in each).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let kib: Option<u64> = self.pids.iter().map(|&p| peak_rss_kib(p)).sum();
        kib.map(|k| k as f64 / 1024.0)
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        self.pids.iter().map(|&p| cpu_time(p)).sum()
    }
}

/// Starts this executable with `args` (a `serve-*` subcommand), waits for the line it prints
/// once listening (`LISTEN …`) and returns the child and that line's words.
pub async fn spawn_self(args: &[String]) -> anyhow::Result<(Child, Vec<String>)> {
    let exe = std::env::current_exe().context("locating tansu-bench")?;
    spawn_listening(&exe, args).await
}

/// Starts `tansu-bench-gateway` (built beside `tansu-bench`) with `args`, like [`spawn_self`].
pub async fn spawn_gateway(args: &[String]) -> anyhow::Result<(Child, Vec<String>)> {
    spawn_listening(&sibling("tansu-bench-gateway")?, args).await
}

/// Starts `tansu-bench-identity serve-identity` (built beside `tansu-bench`) with `args`, like
/// [`spawn_self`].
pub async fn spawn_identity(args: &[String]) -> anyhow::Result<(Child, Vec<String>)> {
    let mut argv = vec!["serve-identity".to_owned()];
    argv.extend_from_slice(args);
    spawn_listening(&sibling("tansu-bench-identity")?, &argv).await
}

/// The raw Argon2id verification rate over `window`, measured by `tansu-bench-identity` (on
/// identity's allocator; see `tansu_bench::identity_rig`).
pub async fn raw_argon2_rate(window: Duration) -> anyhow::Result<f64> {
    let out = Command::new(sibling("tansu-bench-identity")?)
        .args(["raw-argon2", "--millis", &window.as_millis().to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running tansu-bench-identity raw-argon2")?;
    anyhow::ensure!(
        out.status.success(),
        "tansu-bench-identity raw-argon2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the raw Argon2id rate")
}

/// An executable built beside `tansu-bench`.
fn sibling(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()
        .context("locating tansu-bench")?
        .with_file_name(name);
    anyhow::ensure!(
        exe.exists(),
        "{} is missing: build it with `cargo build --release -p tansu-bench --bins`",
        exe.display()
    );
    Ok(exe)
}

async fn spawn_listening(
    exe: &std::path::Path,
    args: &[String],
) -> anyhow::Result<(Child, Vec<String>)> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {}", exe.display(), args.join(" ")))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the child did not report its address in 30 s")??
        .context("the child exited before listening")?;
    let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    anyhow::ensure!(
        words.first().map(String::as_str) == Some("LISTEN"),
        "unexpected line from the child: {line:?}"
    );
    Ok((child, words[1..].to_vec()))
}

/// Stops a child: closes its stdin (it exits by itself), then kills it after `grace`.
pub async fn stop(child: &mut Child, grace: Duration) {
    drop(child.stdin.take());
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

pub use tansu_bench::gateway_rig::exit_with_parent;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_cpu() {
        let me = std::process::id();
        assert!(peak_rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_time(me).is_some());
        assert!(children_of(me).is_empty() || !children_of(me).contains(&me));
    }
}
