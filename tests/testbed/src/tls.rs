//! Mutual TLS for the managers' Docker Engine API, as the stack secures port 2376: one CA for
//! the test bed, a server certificate per manager (its address as subject alternative name),
//! and one client certificate for the processor, in Docker's `DOCKER_CERT_PATH` layout
//! (`ca.pem`, `cert.pem`, `key.pem`). Made with Debian's `openssl`, once, kept until `down`.

use anyhow::{Context, Result};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::{layout, sh};

/// The test bed's TLS directory.
pub fn dir() -> PathBuf {
    Path::new(layout::DATA_DIR).join("tls")
}

/// The client's `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem`, `key.pem`.
pub fn client_dir() -> PathBuf {
    dir().join("client")
}

/// Makes the CA and the client certificate unless they exist. Several managers launched at
/// once call this together: a lock file makes one of them do it.
pub fn ensure_ca_and_client() -> Result<()> {
    let dir = dir();
    let client = client_dir();
    fs::create_dir_all(&client)?;
    let lock = fs::File::create(dir.join(".lock"))?;
    lock.lock().context("cannot lock the TLS directory")?;
    if client.join("key.pem").exists() {
        return Ok(());
    }
    let ca_key = dir.join("ca-key.pem");
    let ca = dir.join("ca.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=swarm-testbed-ca",
        "-keyout",
        &path(&ca_key),
        "-out",
        &path(&ca),
    ])?;
    sign(
        &client,
        "lifecycle-processor",
        "extendedKeyUsage=clientAuth",
    )?;
    fs::copy(&ca, client.join("ca.pem"))?;
    Ok(())
}

/// Makes a server certificate for a manager at `ip` in `dir` (`ca.pem`, `cert.pem`,
/// `key.pem`) unless it exists.
pub fn ensure_server(dir: &Path, ip: Ipv4Addr) -> Result<()> {
    if dir.join("key.pem").exists() {
        return Ok(());
    }
    ensure_ca_and_client()?;
    fs::create_dir_all(dir)?;
    sign(
        dir,
        &ip.to_string(),
        &format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
    )?;
    fs::copy(self::dir().join("ca.pem"), dir.join("ca.pem"))?;
    Ok(())
}

/// A key and a certificate signed by the test bed's CA, in `dir`.
fn sign(dir: &Path, subject: &str, extensions: &str) -> Result<()> {
    let (key, csr, cert, ext) = (
        dir.join("key.pem"),
        dir.join("req.csr"),
        dir.join("cert.pem"),
        dir.join("ext.cnf"),
    );
    fs::write(&ext, format!("{extensions}\n"))?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={subject}"),
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-days",
        "30",
        "-in",
        &path(&csr),
        "-CA",
        &path(&self::dir().join("ca.pem")),
        "-CAkey",
        &path(&self::dir().join("ca-key.pem")),
        "-CAcreateserial",
        "-extfile",
        &path(&ext),
        "-out",
        &path(&cert),
    ])?;
    fs::remove_file(csr)?;
    fs::remove_file(ext)?;
    Ok(())
}

fn openssl(args: &[&str]) -> Result<()> {
    sh::run("openssl", args)
        .map(drop)
        .context("openssl failed: scripts/setup.sh installs it")
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
