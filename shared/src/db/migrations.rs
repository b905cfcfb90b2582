//! One migration layout for every service: numbered files, one folder per dialect.

use std::collections::BTreeSet;
use std::path::Path;

use sqlx::migrate::{MigrateError, Migrator};

use super::Pool;

/// A schema's migrations in both dialects, embedded at compile time:
///
/// ```ignore
/// static MIGRATIONS: Migrations = Migrations {
///     sqlite: sqlx::migrate!("migrations/sqlite"),
///     postgres: sqlx::migrate!("migrations/postgres"),
/// };
/// ```
///
/// Files are named `NNNN_<what>.sql` (four digits, the version; never renumbered once
/// released: the version is what the database records) and the two folders hold the same names.
#[derive(Debug)]
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

impl Migrations {
    /// The migrator of a pool's dialect.
    pub fn of(&self, pool: &Pool) -> &Migrator {
        match pool {
            Pool::Sqlite(_) => &self.sqlite,
            Pool::Postgres(_) => &self.postgres,
        }
    }

    /// Applies the migrations the database has not seen (sqlx's ledger, `_sqlx_migrations`;
    /// on PostgreSQL under an advisory lock, so replicas starting together take turns).
    pub async fn run(&self, pool: &Pool) -> Result<(), MigrateError> {
        match pool {
            Pool::Sqlite(p) => self.sqlite.run(p).await,
            Pool::Postgres(p) => self.postgres.run(p).await,
        }
    }
}

/// How the migration folders under `root` drift: for every folder holding `sqlite/` and
/// `postgres/` (searched recursively), a file name present in one and not the other, or a name
/// not of the form `NNNN_<lowercase words>.sql`, or a version used twice. Empty: no drift.
pub fn migration_folders_drift(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        let (sqlite, postgres) = (dir.join("sqlite"), dir.join("postgres"));
        if !(sqlite.is_dir() && postgres.is_dir()) {
            continue;
        }
        let names = |d: &Path| -> BTreeSet<String> {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        };
        let (s, p) = (names(&sqlite), names(&postgres));
        let at = dir.display();
        for name in s.difference(&p) {
            problems.push(format!("{at}: sqlite/{name} has no postgres/{name}"));
        }
        for name in p.difference(&s) {
            problems.push(format!("{at}: postgres/{name} has no sqlite/{name}"));
        }
        let mut versions = BTreeSet::new();
        for name in s.union(&p) {
            match well_formed_version(name) {
                Some(v) if !versions.insert(v) => {
                    problems.push(format!("{at}: version {v} is used twice ({name})"));
                }
                Some(_) => {}
                None => problems.push(format!("{at}: {name} is not NNNN_<what>.sql")),
            }
        }
    }
    problems.sort();
    problems
}

/// The version of a file named `NNNN_<lowercase words>.sql`.
fn well_formed_version(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".sql")?;
    let (number, what) = stem.split_once('_')?;
    let words = !what.is_empty()
        && what
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (number.len() == 4 && number.bytes().all(|b| b.is_ascii_digit()) && words)
        .then(|| number.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every service's `migrations/**/{sqlite,postgres}` pair holds the same numbered files.
    #[test]
    fn the_services_migration_folders_do_not_drift() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for service in ["identity", "storage-svc", "database-svc"] {
            let root = workspace.join(service).join("migrations");
            assert!(root.is_dir(), "{} has no migrations/", service);
            checked += 1;
            let drift = migration_folders_drift(&root);
            assert!(
                drift.is_empty(),
                "{service}: migrations drift:\n{}",
                drift.join("\n")
            );
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn drift_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (s, p) = (dir.path().join("sqlite"), dir.path().join("postgres"));
        std::fs::create_dir_all(&s).unwrap();
        std::fs::create_dir_all(&p).unwrap();
        for f in ["0001_a.sql", "0002_b.sql"] {
            std::fs::write(s.join(f), "").unwrap();
        }
        std::fs::write(p.join("0001_a.sql"), "").unwrap();
        std::fs::write(p.join("2_b.sql"), "").unwrap();
        std::fs::write(p.join("0001_again.sql"), "").unwrap();
        let drift = migration_folders_drift(dir.path());
        assert_eq!(drift.len(), 5, "{drift:#?}");
        assert!(
            drift
                .iter()
                .any(|d| d.contains("sqlite/0002_b.sql has no postgres"))
        );
        assert!(
            drift
                .iter()
                .any(|d| d.contains("postgres/2_b.sql has no sqlite"))
        );
        assert!(drift.iter().any(|d| d.contains("2_b.sql is not NNNN")));
        assert!(drift.iter().any(|d| d.contains("version 1 is used twice")));
        assert!(
            drift
                .iter()
                .any(|d| d.contains("postgres/0001_again.sql has no sqlite"))
        );
        assert!(migration_folders_drift(&dir.path().join("absent")).is_empty());
    }
}
