//! The test bed's load balancer: HAProxy (Debian's) on the bridge, standing in for the stack's
//! Application Load Balancer and its target group. It listens on the bridge's
//! [`PORT`] and sends each request to a node's [`SERVICE_PORT`], where the web service
//! publishes in host mode.
//!
//! The Auto Scaling emulator registers and deregisters the nodes through HAProxy's runtime
//! API, as Auto Scaling does with an attached target group: a node is registered when it goes
//! in service and receives traffic only once its health check passes (an ALB target's
//! "initial" state); when its termination begins it is deregistered first (no new requests,
//! the ones in flight finish for the deregistration delay), before its termination hooks run.

use anyhow::{Context, Result, bail};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::layout;

/// Where the load balancer listens, on the bridge.
pub const PORT: u16 = 8080;
/// The port the web service publishes on each node (host mode).
pub const SERVICE_PORT: u16 = 8000;
/// The target group the test bed's groups are attached to.
pub const TARGET_GROUP_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/testbed-web/73e2d6bc24d8a067";
/// The target group's deregistration delay, in API seconds (the stack's: 30 s).
pub const DEREGISTRATION_DELAY_SECS: u32 = 30;
/// HAProxy's backend of the nodes.
const BACKEND: &str = "nodes";

fn socket() -> PathBuf {
    Path::new(layout::RUN_DIR).join("haproxy.sock")
}

fn config() -> PathBuf {
    Path::new(layout::DATA_DIR).join("haproxy.cfg")
}

/// The load balancer's address, as a client sends requests to it.
pub fn endpoint() -> String {
    format!("http://{}:{PORT}/", layout::gateway())
}

/// Starts HAProxy unless it answers already, with no servers: the emulator registers them.
pub fn start() -> Result<()> {
    if answers() {
        return Ok(());
    }
    std::fs::create_dir_all(layout::RUN_DIR)?;
    let _ = std::fs::remove_file(socket());
    // Health checks as the stack's target group does them (HTTP GET /, two in a row to change
    // state), at the emulator's time scale: every half second, not every ten.
    let text = format!(
        "global\n  stats socket {socket} mode 600 level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\
         frontend web\n  bind {gateway}:{PORT}\n  default_backend {BACKEND}\n\
         backend {BACKEND}\n  balance roundrobin\n  option httpchk GET /\n  \
         default-server inter 500ms fall 2 rise 2\n",
        socket = socket().display(),
        gateway = layout::gateway(),
    );
    std::fs::write(config(), text)?;
    let haproxy = which_haproxy()?;
    let mut command = Command::new(haproxy);
    command.arg("-db").arg("-f").arg(config());
    crate::procs::start_server(
        command,
        &Path::new(layout::DATA_DIR).join("haproxy.log"),
        answers,
    )
}

/// Debian's HAProxy.
pub(crate) fn which_haproxy() -> Result<PathBuf> {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("haproxy is missing: scripts/setup.sh installs it (Debian's haproxy)")
}

/// Whether the web HAProxy answers on its runtime API.
pub fn answers() -> bool {
    web().answers()
}

/// One runtime API command of the web HAProxy; its answer.
pub fn command(line: &str) -> Result<String> {
    web().command(line)
}

/// The web backend's servers.
pub fn servers() -> Result<Vec<Server>> {
    web().servers()
}

fn web() -> Proxy {
    Proxy::new(socket(), BACKEND, "L7OK")
}

/// One HAProxy, through its runtime API: the backend the emulator registers nodes in.
#[derive(Debug, Clone)]
pub struct Proxy {
    socket: PathBuf,
    backend: &'static str,
    /// How a passed health check starts (`L7OK` for HTTP, `L4OK` for a TCP connect).
    pub healthy: &'static str,
}

impl Proxy {
    /// The HAProxy whose runtime API is at `socket`, its servers in `backend`.
    pub fn new(socket: PathBuf, backend: &'static str, healthy: &'static str) -> Self {
        Self {
            socket,
            backend,
            healthy,
        }
    }

    /// Whether it answers on its runtime API.
    pub fn answers(&self) -> bool {
        self.command("show info").is_ok()
    }

    /// One runtime API command; its answer.
    pub fn command(&self, line: &str) -> Result<String> {
        let mut stream = UnixStream::connect(&self.socket).with_context(|| {
            format!(
                "HAProxy's runtime API ({}) does not answer",
                self.socket.display()
            )
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.trim().to_owned())
    }

    /// A command whose answer must be empty or one of `fine` (HAProxy answers errors in words).
    fn expect(&self, line: &str, fine: &[&str]) -> Result<()> {
        let answer = self.command(line)?;
        if answer.is_empty() || fine.iter().any(|f| answer.contains(f)) {
            Ok(())
        } else {
            bail!("HAProxy refused `{line}`: {answer}")
        }
    }

    /// The backend's servers.
    pub fn servers(&self) -> Result<Vec<Server>> {
        let stat = self.command("show stat")?;
        let mut lines = stat.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(status), Some(check)) = (
            column("pxname"),
            column("svname"),
            column("status"),
            column("check_status"),
        ) else {
            bail!("HAProxy's `show stat` has an unexpected header");
        };
        Ok(lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|f| {
                f.get(px) == Some(&self.backend) && f.get(sv).is_some_and(|s| *s != "BACKEND")
            })
            .map(|f| Server {
                name: f[sv].to_owned(),
                status: f.get(status).copied().unwrap_or_default().to_owned(),
                check: f.get(check).copied().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// Adds the server `name` at `ip:port`, in maintenance with its health checked (it takes
    /// no traffic until [`Proxy::enable`]). Idempotent.
    pub fn add(&self, name: &str, ip: std::net::Ipv4Addr, port: u16) -> Result<()> {
        let backend = self.backend;
        self.expect(
            &format!("add server {backend}/{name} {ip}:{port} check"),
            &["New server registered", "Already exists"],
        )?;
        self.expect(&format!("enable health {backend}/{name}"), &[])
    }

    /// Puts the server `name` in rotation.
    pub fn enable(&self, name: &str) -> Result<()> {
        self.expect(&format!("enable server {}/{name}", self.backend), &[])
    }

    /// No new connections to `name`; those open go on. `false` when there is no such server.
    pub fn drain(&self, name: &str) -> Result<bool> {
        let line = format!("set server {}/{name} state drain", self.backend);
        Ok(!self.command(&line)?.contains("No such server"))
    }

    /// Ends the connections to `name` and removes it. A server already gone is no error.
    pub fn remove(&self, name: &str) -> Result<()> {
        let backend = self.backend;
        self.expect(
            &format!("set server {backend}/{name} state maint"),
            &["No such server"],
        )?;
        self.expect(
            &format!("shutdown sessions server {backend}/{name}"),
            &["No such server"],
        )?;
        self.expect(
            &format!("del server {backend}/{name}"),
            &["Server deleted", "No such server"],
        )
    }
}

/// A server of a backend, as `show stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name (the instance id).
    pub name: String,
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, ...
    pub status: String,
    /// The last health check's result (`L7OK`, `L4CON`, ...).
    pub check: String,
}

/// The registrations the emulator made, as a target group holds them.
#[derive(Debug, Default)]
pub struct TargetGroup {
    /// Registered, health check not yet passed: kept out of rotation (HAProxy's maintenance
    /// mode, in which it still checks them) until it passes.
    initial: Mutex<HashSet<String>>,
}

impl TargetGroup {
    fn initial(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding it leaves a plain set behind: still usable.
        self.initial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers the node `name` at `ip`. Idempotent.
    pub fn register(&self, name: &str, ip: std::net::Ipv4Addr) -> Result<()> {
        web().add(name, ip, SERVICE_PORT)?;
        self.initial().insert(name.to_owned());
        Ok(())
    }

    /// Puts in rotation each registered node whose health check has passed.
    pub fn admit_healthy(&self) -> Result<()> {
        let waiting: Vec<String> = self
            .initial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let web = web();
        for server in web.servers()? {
            if waiting.contains(&server.name) && server.check.starts_with(web.healthy) {
                web.enable(&server.name)?;
                self.initial().remove(&server.name);
            }
        }
        Ok(())
    }

    /// Deregisters the node `name`: no new requests at once, the ones in flight have `delay`
    /// to finish, then it is gone. A node that was never registered is no error.
    pub async fn deregister(&self, name: &str, delay: Duration) -> Result<()> {
        self.initial().remove(name);
        let web = web();
        if !web.drain(name)? {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        web.remove(name)
    }
}
