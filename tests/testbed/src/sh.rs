//! Running the system tools the test bed is made of (`ip`, `nsenter`, `dockerd`, `umount`),
//! with errors that say which command failed and what it printed.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// Runs a command to completion; fails with its stderr when it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{program}`: is it installed?"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a command whose failure is expected when there is nothing to do (deleting what may
/// not exist): cleanup must go on whatever is left.
pub fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
