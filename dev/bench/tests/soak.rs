//! The soak, short: `tansu-bench soak` for one minute over the service binaries of this build
//! (`cargo build --workspace --bins`, which the README's test command runs first) must keep
//! every request succeeding and report a slope for every process. The long run (30 minutes,
//! its slopes in BENCHMARKS.md) is a benchmark, not a test.

use std::process::Command;

#[test]
fn a_short_soak_succeeds_and_reports_every_process() {
    let bins = tansu_shared::testing::processes::bin_dir();
    if ["identity", "database", "storage", "gateway"]
        .iter()
        .any(|s| !bins.join(format!("tansu-{s}")).exists())
    {
        let skipped: Option<()> = tansu_shared::testing::skip_or_fail(
            "soak",
            "the service binaries are not built (cargo build --workspace --bins)",
        );
        assert!(skipped.is_none());
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tansu-bench"))
        .args([
            "soak",
            "--minutes",
            "1",
            "--sample",
            "10",
            "--warmup-minutes",
            "0",
            "--clients",
            "2",
        ])
        .output()
        .expect("tansu-bench runs");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for process in ["identity", "database", "storage", "gateway"] {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {process} |")))
            .unwrap_or_else(|| panic!("no slope row for {process}:\n{report}"));
        assert!(!row.contains("n/a"), "{row}");
    }
    assert!(report.contains(", 0 failed."), "{report}");
}
