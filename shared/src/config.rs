//! Configuration: one TOML file for the platform plus `TANSU_…` environment overrides.
//!
//! Each service reads its own section (`[identity]`, `[gateway]`, …). An environment variable
//! `TANSU_<SECTION>__<KEY>` (double underscore between levels) overrides the file, so
//! `TANSU_IDENTITY__ISSUER=https://id.example/identity/` sets `identity.issuer`. Values are
//! validated once at start-up with a message that names the offending key. Secrets use
//! [`Secret`], which never prints its value: not in `Debug`, not in `--print-config`.
//!
//! A value can also come from a file (container secrets): `TANSU_<SECTION>__<KEY>__FILE=/run/
//! secrets/x` sets the key to the file's content, one trailing line break removed. Such a file
//! wins over the plain variable and the TOML file; one that cannot be read is a config error.

use std::fmt;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A configuration value that must never be shown: printed and serialised as `[redacted]`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Name the call site's reason when using it; never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A configuration that can check itself after loading.
pub trait Validate {
    /// Every problem found, each naming its key (`identity.issuer: must end with '/'`).
    fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration is invalid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The suffix of an environment variable naming a file that holds the value.
const FILE_SUFFIX: &str = "__FILE";

/// The figment for a platform config file (optional) plus `TANSU_` environment overrides and
/// `TANSU_…__FILE` values read from files.
pub fn figment(file: Option<&Path>) -> Figment {
    let mut f = Figment::new();
    if let Some(path) = file {
        f = f.merge(Toml::file_exact(path));
    }
    f.merge(
        Env::prefixed("TANSU_")
            .split("__")
            .lowercase(true)
            .filter(|k| !k.as_str().to_ascii_uppercase().ends_with(FILE_SUFFIX)),
    )
    .merge(SecretFiles)
}

/// `TANSU_<SECTION>__<KEY>__FILE=<path>`: the key's value is the file's content.
struct SecretFiles;

impl figment::Provider for SecretFiles {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("TANSU_…__FILE secret files")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut merged = Figment::new();
        for (name, path) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let Some(key) = name
                .strip_prefix("TANSU_")
                .and_then(|k| k.strip_suffix(FILE_SUFFIX))
            else {
                continue;
            };
            let mut value = std::fs::read_to_string(&path).map_err(|e| {
                figment::Error::from(format!(
                    "{name}: cannot read {}: {e}",
                    Path::new(&path).display()
                ))
            })?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            let key = key.to_ascii_lowercase().replace("__", ".");
            merged = merged.merge(figment::providers::Serialized::default(&key, value));
        }
        merged.data()
    }
}

/// Loads and validates one section (`identity`, `gateway`, …). Keys absent everywhere take the
/// type's `#[serde(default)]` values, so an empty file is a valid development configuration.
pub fn load_section<T: DeserializeOwned + Validate>(
    figment: &Figment,
    section: &str,
) -> Result<T, ConfigError> {
    // A source that cannot be read (a TOML file, a `__FILE`) fails the load instead of reading
    // as an absent section.
    figment
        .extract::<figment::value::Dict>()
        .map_err(Box::new)?;
    let value: T = if figment.contains(section) {
        figment.extract_inner(section).map_err(Box::new)?
    } else {
        Figment::new().extract().map_err(Box::new)?
    };
    let problems: Vec<String> = value
        .validate()
        .into_iter()
        .map(|p| format!("{section}.{p}"))
        .collect();
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// The effective configuration as TOML, with every [`Secret`] shown as `[redacted]`.
pub fn to_redacted_toml<T: Serialize>(section: &str, value: &T) -> String {
    let mut table = toml::Table::new();
    match toml::Value::try_from(value) {
        Ok(v) => {
            table.insert(section.to_owned(), v);
            toml::to_string_pretty(&table).unwrap_or_default()
        }
        Err(e) => format!("# could not render [{section}]: {e}\n"),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        listen: String,
        issuer: String,
        client_secret: Secret,
        leeway_secs: u64,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                listen: "127.0.0.1:7001".into(),
                issuer: "https://127.0.0.1:8443/identity/".into(),
                client_secret: Secret::default(),
                leeway_secs: 30,
            }
        }
    }

    impl Validate for Demo {
        fn validate(&self) -> Vec<String> {
            let mut v = Vec::new();
            if !self.issuer.ends_with('/') {
                v.push("issuer: must end with '/'".to_owned());
            }
            v
        }
    }

    #[test]
    fn file_then_env_override_and_secret_is_redacted() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[demo]\nlisten = \"0.0.0.0:9\"\nclient_secret = \"s3cr3t-value\"\n"
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("TANSU_DEMO__LEEWAY_SECS", "5");
            let cfg: Demo = load_section(&figment(Some(file.path())), "demo").unwrap();
            assert_eq!(cfg.listen, "0.0.0.0:9");
            assert_eq!(cfg.leeway_secs, 5);
            assert_eq!(cfg.client_secret.expose(), "s3cr3t-value");
            let printed = to_redacted_toml("demo", &cfg);
            assert!(printed.contains("[redacted]"), "{printed}");
            assert!(!printed.contains("s3cr3t-value"), "{printed}");
            assert!(!format!("{cfg:?}").contains("s3cr3t-value"));
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TANSU_DEMO__ISSUER", "https://no-slash");
            let err = load_section::<Demo>(&figment(None), "demo").unwrap_err();
            assert!(
                err.to_string().contains("demo.issuer: must end with '/'"),
                "{err}"
            );
            jail.set_env("TANSU_DEMO__LEEWAY_SECS", "not-a-number");
            let err = load_section::<Demo>(&figment(None), "demo").unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("leeway_secs"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_value_can_come_from_a_file_and_wins() {
        let mut secret = tempfile::NamedTempFile::new().unwrap();
        writeln!(secret, "from-a-file").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("TANSU_DEMO__CLIENT_SECRET", "from-the-environment");
            jail.set_env(
                "TANSU_DEMO__CLIENT_SECRET__FILE",
                secret.path().display().to_string(),
            );
            let cfg: Demo = load_section(&figment(None), "demo").unwrap();
            assert_eq!(cfg.client_secret.expose(), "from-a-file");
            jail.set_env("TANSU_DEMO__CLIENT_SECRET__FILE", "/nonexistent/secret");
            let err = load_section::<Demo>(&figment(None), "demo").unwrap_err();
            assert!(
                err.to_string().contains("TANSU_DEMO__CLIENT_SECRET__FILE"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn missing_section_gives_defaults() {
        figment::Jail::expect_with(|_| {
            let cfg: Demo = load_section(&figment(None), "demo").unwrap();
            assert_eq!(cfg.listen, "127.0.0.1:7001");
            Ok(())
        });
    }
}
