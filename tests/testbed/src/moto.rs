//! moto server, the AWS API emulator for SQS, DynamoDB, EC2 and ELBv2, run on loopback from
//! the virtualenv that `scripts/setup.sh` makes from `tests/testbed/moto-requirements.txt`
//! (pinned). The code under test reaches it only through the AWS SDK's standard endpoint
//! settings (`AWS_ENDPOINT_URL`), see [`crate::Testbed::aws_env`].

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::layout;

/// The virtualenv holding the pinned moto.
pub fn venv() -> PathBuf {
    Path::new(layout::CACHE_DIR).join("venv")
}

/// The endpoint URL of the running server.
pub fn endpoint() -> String {
    format!("http://127.0.0.1:{}", layout::MOTO_PORT)
}

/// Starts moto server unless one answers already, and waits until it does.
pub fn start() -> Result<()> {
    if answers() {
        return Ok(());
    }
    let server = venv().join("bin/moto_server");
    if !server.exists() {
        bail!(
            "{} is missing: run scripts/setup.sh, which installs the pinned moto",
            server.display()
        );
    }
    fs::create_dir_all(layout::DATA_DIR)?;
    let log_path = Path::new(layout::DATA_DIR).join("moto.log");
    let log = fs::File::create(&log_path)?;
    Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &layout::MOTO_PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start moto_server")?;
    let started = Instant::now();
    while !answers() {
        if started.elapsed() > Duration::from_secs(60) {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            bail!("moto server did not answer within 60 s; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether moto answers on its port (its own API, `GET /moto-api/`, must say 200).
pub fn answers() -> bool {
    let addr = ([127, 0, 0, 1], layout::MOTO_PORT).into();
    matches!(
        crate::http::get(addr, "/moto-api/", Duration::from_secs(5)),
        Ok((200, _))
    )
}
