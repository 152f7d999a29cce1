//! Finding and killing the processes of the test bed by what they are, not by pid files
//! alone: a killed run leaves pid files that lie and processes nobody recorded.
//!
//! A process belongs to node N when its command line names N's runtime or data directory
//! (dockerd, its containerd, every containerd shim), or when it sits in N's cgroup (the
//! containers' own processes, which outlive a killed shim).

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::layout;

/// Pids of every process whose command line or cgroup matches `belongs`.
fn matching(belongs: impl Fn(&str, &str) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                .unwrap_or_default();
            let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            belongs(&cmdline, &cgroup)
        })
        .collect()
}

/// Pids of the processes whose command line contains `part`.
pub fn running(part: &str) -> Vec<i32> {
    matching(|cmdline, _| cmdline.contains(part))
}

/// Pids of node `name`'s processes.
pub fn of_node(name: &str) -> Vec<i32> {
    let run = format!("{}/{name}/", layout::RUN_DIR);
    let data = format!("{}/{name}/", layout::DATA_DIR);
    let cgroup = format!("/{}{name}/", layout::CGROUP_PREFIX);
    matching(|cmdline, cg| {
        cmdline.contains(&run) || cmdline.contains(&data) || cg.contains(&cgroup)
    })
}

/// Pids of every process of the test bed: all nodes, moto (run from the cached venv), and the
/// Auto Scaling emulator.
pub fn of_testbed() -> Vec<i32> {
    let run = format!("{}/", layout::RUN_DIR);
    let data = format!("{}/", layout::DATA_DIR);
    let cache = format!("{}/", layout::CACHE_DIR);
    let cgroup = format!("/{}", layout::CGROUP_PREFIX);
    matching(|cmdline, cg| {
        cmdline.contains(&run)
            || cmdline.contains(&data)
            || cmdline.contains(&cache)
            || cmdline.contains(layout::EMULATOR_COMMAND)
            || cg.contains(&cgroup)
    })
}

/// Sends `signal` (`TERM`, `KILL`) to each pid; a pid already gone is not an error.
pub fn signal(pids: &[i32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let mut args = vec![format!("-{signal}")];
    args.extend(pids.iter().map(i32::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::sh::run_quiet("kill", &args);
}

/// Kills every process of node `name` at once and waits until they are gone.
pub fn kill_node(name: &str) {
    kill_until_gone(|| of_node(name));
}

/// SIGKILLs what `find` returns until it returns nothing (a dying shim may leave a child to
/// reap), for at most five seconds.
pub fn kill_until_gone(find: impl Fn() -> Vec<i32>) {
    for _ in 0..50 {
        let pids = find();
        if pids.is_empty() {
            return;
        }
        signal(&pids, "KILL");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Starts a server of the test bed (moto, the Auto Scaling emulator) in the background, in
/// its own process group so that a Ctrl-C of the caller does not stop it, its output in
/// `log_path`, and waits up to a minute until `answers` says it serves.
pub fn start_server(
    mut command: Command,
    log_path: &Path,
    answers: impl Fn() -> bool,
) -> Result<()> {
    let what = command.get_program().to_string_lossy().into_owned();
    fs::create_dir_all(layout::DATA_DIR)?;
    let log = fs::File::create(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let started = Instant::now();
    while !answers() {
        if started.elapsed() > Duration::from_secs(60) {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            bail!("{what} did not answer within 60 s; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
