//! The processor as its users run it: the `lifecycle serve` binary, a process of its own, its
//! log in a file the test can read.

use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::fixture::Fixture;

/// Where every processor a test starts logs, one file each.
pub fn logs_dir() -> Result<PathBuf> {
    Ok(crate::binary("lifecycle")?.with_file_name("e2e-logs"))
}

/// The lines of every processor's log that contain all of `parts`: what any processor did,
/// whichever test started it (they all see the test bed's one swarm).
pub fn logged_anywhere(parts: &[&str]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(logs_dir()?)? {
        let text = fs::read_to_string(entry?.path()).unwrap_or_default();
        found.extend(
            text.lines()
                .filter(|line| parts.iter().all(|part| line.contains(part)))
                .map(str::to_owned),
        );
    }
    Ok(found)
}

/// A running `lifecycle serve`.
pub struct ProcessorProcess {
    child: Child,
    /// Where its log goes.
    pub log: PathBuf,
}

impl ProcessorProcess {
    /// Starts `lifecycle serve` on the fixture's queue and group, talking to every manager of
    /// the test bed over its socket, with the test timings (heartbeat every second, swarm
    /// observed every 100 ms, a message hidden 5 s at a time), `extra` on top.
    pub fn start(fixture: &Fixture, extra: &[(&str, &str)]) -> Result<Self> {
        let binary = crate::binary("lifecycle")?;
        let hosts = crate::manager_sockets()?;
        let dir = logs_dir()?;
        fs::create_dir_all(&dir)?;
        // One log per process, numbered in the order they start.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("{}-{n}.log", fixture.name));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(&binary)
            .arg("serve")
            .env("SWARM_GROUPS", &fixture.name)
            .env("QUEUE_URL", &fixture.queue_url)
            .env("DOCKER_HOSTS", hosts)
            .env("HEARTBEAT_INTERVAL_SECONDS", "1")
            .env("POLL_INTERVAL_MS", "100")
            .env("VISIBILITY_TIMEOUT_SECONDS", "5")
            .env("RUST_LOG", "info")
            // Every test's processor sees the one swarm of the test bed: only the sweep's own
            // tests sweep it on a timer (they set it); after a completed termination, any does.
            .env("SWEEP_INTERVAL_SECONDS", "0")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Self { child, log })
    }

    /// What it logged so far.
    pub fn logged(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it as `docker stop` would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for ProcessorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
