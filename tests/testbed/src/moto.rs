//! moto server, the AWS API emulator for SQS, DynamoDB, EC2 and ELBv2, run on loopback from
//! the virtualenv that `scripts/setup.sh` makes from `tests/testbed/moto-requirements.txt`
//! (pinned). The code under test reaches it only through the AWS SDK's standard endpoint
//! settings (`AWS_ENDPOINT_URL`), see [`crate::Testbed::aws_env`].

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::layout;

/// moto's server, with what it lacks of ELBv2's documented behaviour added.
const SERVER: &str = include_str!("../moto/server.py");

/// The virtualenv holding the pinned moto.
pub fn venv() -> PathBuf {
    Path::new(layout::CACHE_DIR).join("venv")
}

/// The endpoint URL of the running server.
pub fn endpoint() -> String {
    format!("http://{}:{}", layout::gateway(), layout::MOTO_PORT)
}

/// Starts moto server unless one answers already, and waits until it does.
pub fn start() -> Result<()> {
    if answers() {
        return Ok(());
    }
    let python = venv().join("bin/python");
    if !venv().join("bin/moto_server").exists() {
        bail!(
            "{} is missing: run scripts/setup.sh, which installs the pinned moto",
            venv().join("bin/moto_server").display()
        );
    }
    // moto's server with the ELBv2 behaviours it lacks (see the script).
    std::fs::create_dir_all(layout::DATA_DIR)?;
    let script = Path::new(layout::DATA_DIR).join("moto_server.py");
    std::fs::write(&script, SERVER)?;
    let mut command = Command::new(&python);
    command.arg(&script);
    // On the bridge's address, not loopback: a node's boot script reaches it from inside the
    // node's namespace as an instance reaches AWS (the host reaches the bridge too).
    command.args([
        "-H",
        &layout::gateway().to_string(),
        "-p",
        &layout::MOTO_PORT.to_string(),
    ]);
    crate::procs::start_server(
        command,
        &Path::new(layout::DATA_DIR).join("moto.log"),
        answers,
    )
}

/// Whether moto answers on its port (its own API, `GET /moto-api/`, must say 200).
pub fn answers() -> bool {
    let addr = (layout::gateway(), layout::MOTO_PORT).into();
    matches!(
        crate::http::get(addr, "/moto-api/", Duration::from_secs(5)),
        Ok((200, _))
    )
}
