//! The development TLS certificate: self-signed for localhost, created once under the data dir
//! and reused on every start (so a browser exception or a trusted copy stays valid).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct DevCertificate {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// PEM of the certificate: what a client trusts to talk to the dev gateway.
    pub cert_pem: String,
}

/// Loads `<dir>/cert.pem` + `<dir>/key.pem`, creating them (key mode 0600) when absent.
pub fn ensure_dev_certificate(dir: &Path) -> anyhow::Result<DevCertificate> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        let cert_pem = fs::read_to_string(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        return Ok(DevCertificate {
            cert_path,
            key_path,
            cert_pem,
        });
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).context("generating the dev certificate")?;
    let cert_pem = generated.cert.pem();
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, &cert_pem).with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "created a self-signed development certificate");
    Ok(DevCertificate {
        cert_path,
        key_path,
        cert_pem,
    })
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
