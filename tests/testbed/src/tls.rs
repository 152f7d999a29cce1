//! Mutual TLS for the managers' Docker Engine API, as the stack secures port 2376, made with
//! the product's own [`swarm_aws::pki`]: one CA for the test bed, a server certificate per
//! manager (its address as subject alternative name), and one client certificate for the
//! processor, in Docker's `DOCKER_CERT_PATH` layout (`ca.pem`, `cert.pem`, `key.pem`). Made
//! once, kept until `down`. Every TLS handshake of the suite therefore proves those
//! certificates against a real `dockerd` and the processor's client.

use anyhow::{Context, Result};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use swarm_aws::pki::Authority;

use crate::layout;

/// The test bed's TLS directory.
pub fn dir() -> PathBuf {
    Path::new(layout::DATA_DIR).join("tls")
}

/// The client's `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem`, `key.pem`.
pub fn client_dir() -> PathBuf {
    dir().join("client")
}

/// The CA as its secret holds it (certificate and key).
fn ca_file() -> PathBuf {
    dir().join("ca.json")
}

/// Makes the CA and the client certificate unless they exist. Several managers launched at
/// once call this together: a lock file makes one of them do it.
pub fn ensure_ca_and_client() -> Result<Authority> {
    let dir = dir();
    fs::create_dir_all(&dir)?;
    let lock = fs::File::create(dir.join(".lock"))?;
    lock.lock().context("cannot lock the TLS directory")?;
    if let Ok(text) = fs::read_to_string(ca_file()) {
        return serde_json::from_str(&text).context("the test bed's CA file is malformed");
    }
    let ca = Authority::generate()?;
    ca.issue_client()?.write_to(&client_dir())?;
    let part = dir.join(".ca.json.part");
    fs::write(&part, serde_json::to_string(&ca)?)?;
    fs::rename(part, ca_file())?;
    Ok(ca)
}

/// Makes a server certificate for a manager at `ip` in `dir` (`ca.pem`, `cert.pem`,
/// `key.pem`) unless it exists.
pub fn ensure_server(dir: &Path, ip: Ipv4Addr) -> Result<()> {
    if dir.join("key.pem").exists() {
        return Ok(());
    }
    let ca = ensure_ca_and_client()?;
    ca.issue_server(ip.into())?.write_to(dir)?;
    Ok(())
}
