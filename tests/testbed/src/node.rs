//! One swarm node of the test bed: a network namespace on the test bed bridge with its own
//! `dockerd` (own data root, exec root, pid file, socket, hostname and cgroup parent).
//!
//! `dockerd` starts through `nsenter --net`, not `ip netns exec`: the latter remounts /sys,
//! and dockerd then finds no cgroups. `unshare --uts` gives each node its own hostname, as
//! each EC2 instance has, because Swarm names nodes after it.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::layout::{self, NodePaths};
use crate::{procs, sh};

/// Manager or worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A swarm manager (Raft member).
    Manager,
    /// A swarm worker.
    Worker,
}

impl Role {
    /// The letter node names start with: `m1`, `w2`.
    pub fn letter(self) -> char {
        match self {
            Self::Manager => 'm',
            Self::Worker => 'w',
        }
    }
}

/// A node as the test bed made it, recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Short name: `m1`, `w3`; also names its namespace, veth and directories.
    pub name: String,
    /// Manager or worker.
    pub role: Role,
    /// Its address on the test bed bridge.
    pub ip: Ipv4Addr,
    /// The made-up EC2 instance id carried in the engine label `instance-id`.
    pub instance_id: String,
    /// Its hostname, EC2 style (`ip-10-77-0-11`): Swarm's node name.
    pub hostname: String,
}

impl Node {
    /// A new node of `role` with address index `index`, and a fresh instance id.
    pub fn new(role: Role, number: u8, index: u8) -> Result<Self> {
        let ip = layout::node_ip(index);
        Ok(Self {
            name: format!("{}{number}", role.letter()),
            role,
            ip,
            instance_id: made_up_instance_id()?,
            hostname: format!("ip-{}", ip.to_string().replace('.', "-")),
        })
    }

    /// Its paths.
    pub fn paths(&self) -> NodePaths {
        NodePaths::of(&self.name)
    }

    /// `unix://` URL of its Docker API socket.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.paths().socket().display())
    }

    /// `tcp://` URL of its Engine API over mutual TLS (managers only).
    pub fn docker_tls_host(&self) -> String {
        format!("tcp://{}:{}", self.ip, crate::layout::DOCKER_TLS_PORT)
    }

    /// Its network namespace.
    pub fn netns(&self) -> String {
        format!("{}{}", layout::NETNS_PREFIX, self.name)
    }

    /// The host end of its veth.
    pub fn veth(&self) -> String {
        format!("{}{}", layout::VETH_PREFIX, self.name)
    }

    /// Creates its namespace and plugs it into the bridge. Idempotent.
    pub fn create_network(&self) -> Result<()> {
        let netns = self.netns();
        let veth = self.veth();
        if !std::path::Path::new("/run/netns").join(&netns).exists() {
            sh::run("ip", &["netns", "add", &netns])?;
        }
        if !sh::run_quiet("ip", &["link", "show", &veth]) {
            sh::run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
                ],
            )?;
        }
        sh::run(
            "ip",
            &["link", "set", &veth, "master", layout::BRIDGE, "up"],
        )?;
        let cidr = format!("{}/{}", self.ip, layout::PREFIX_LEN);
        let addrs = sh::run("ip", &["-n", &netns, "-o", "addr", "show", "dev", "eth0"])?;
        if !addrs.contains(&format!(" {cidr} ")) {
            sh::run("ip", &["-n", &netns, "addr", "add", &cidr, "dev", "eth0"])?;
        }
        sh::run("ip", &["-n", &netns, "link", "set", "eth0", "up"])?;
        sh::run("ip", &["-n", &netns, "link", "set", "lo", "up"])?;
        sh::run(
            "ip",
            &[
                "-n",
                &netns,
                "route",
                "replace",
                "default",
                "via",
                &layout::gateway().to_string(),
            ],
        )?;
        Ok(())
    }

    /// Makes the node: its network, its daemon, the image. Idempotent.
    pub async fn provision(&self) -> Result<()> {
        crate::create_bridge()?;
        self.create_network()?;
        self.start_daemon().await?;
        let docker = crate::docker::connect(&self.docker_host()).await?;
        crate::image::import(&docker, &crate::image::tarball()?).await
    }

    /// Starts its `dockerd` and waits until the API answers. Idempotent: a running daemon is
    /// left alone.
    pub async fn start_daemon(&self) -> Result<()> {
        let paths = self.paths();
        if crate::docker::connect(&self.docker_host()).await.is_ok() {
            return Ok(());
        }
        // A daemon killed with -9 leaves its pid file and socket; dockerd refuses to start
        // over a live pid, and a stale socket would fool the readiness check.
        procs::kill_node(&self.name);
        let _ = fs::remove_file(paths.socket());
        let _ = fs::remove_file(paths.pid_file());
        fs::create_dir_all(&paths.run)?;
        fs::create_dir_all(paths.data_root())?;
        fs::write(paths.daemon_config(), "{}\n")?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.log())
            .with_context(|| format!("cannot open {}", paths.log().display()))?;
        let netns_path = format!("--net=/run/netns/{}", self.netns());
        let label = format!("--label={}={}", layout::INSTANCE_ID_LABEL, self.instance_id);
        let cgroup = format!("--cgroup-parent={}{}", layout::CGROUP_PREFIX, self.name);
        let host = self.docker_host();
        // Managers also serve the Engine API over mutual TLS on their address, as the stack's
        // managers do for the processor (the unix socket stays for the test bed itself).
        let mut tls_args: Vec<String> = Vec::new();
        if self.role == Role::Manager {
            let dir = paths.tls();
            crate::tls::ensure_server(&dir, self.ip)?;
            tls_args = vec![
                "-H".into(),
                self.docker_tls_host(),
                "--tlsverify".into(),
                format!("--tlscacert={}", dir.join("ca.pem").display()),
                format!("--tlscert={}", dir.join("cert.pem").display()),
                format!("--tlskey={}", dir.join("key.pem").display()),
            ];
        }
        let data_root = paths.data_root();
        let exec_root = paths.exec_root();
        let pid_file = paths.pid_file();
        let config = paths.daemon_config();
        Command::new("nsenter")
            .arg(&netns_path)
            .args([
                "unshare",
                "--uts",
                "sh",
                "-c",
                "hostname \"$0\" && exec \"$@\"",
            ])
            .arg(&self.hostname)
            .arg("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(&pid_file)
            .arg("-H")
            .arg(&host)
            .args(&tls_args)
            .arg(&label)
            .arg(&cgroup)
            .arg("--log-level=warn")
            // Nothing can be pulled here: a task must use the imported image, not first wait
            // for a registry lookup to time out.
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C of the command that started it must not kill it.
            .process_group(0)
            .spawn()
            .context("cannot start dockerd through nsenter")?;
        self.wait_for_daemon(Duration::from_secs(60)).await
    }

    async fn wait_for_daemon(&self, timeout: Duration) -> Result<()> {
        // Not `wait::until`: this runs inside the emulator's spawned tasks, and there the
        // compiler cannot prove the future of an async closure `Send` for every lifetime.
        let started = Instant::now();
        loop {
            if crate::docker::connect(&self.docker_host()).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let log = fs::read_to_string(self.paths().log()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                bail!(
                    "dockerd of node {} did not answer within {timeout:?}; last lines of {}:\n{}",
                    self.name,
                    self.paths().log().display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the node as a power cut would: its daemon, containerd, shims and containers die
    /// at once (SIGKILL). Its namespace and data stay, so [`Node::start_daemon`] brings it back.
    pub fn kill(&self) {
        procs::kill_node(&self.name);
        crate::cleanup::unmount_under(&[&self.paths().run, &self.paths().data]);
    }

    /// Restarts its daemon as a reboot or `systemctl restart docker` would: SIGTERM, a wait
    /// for it to stop its containers and exit (SIGKILL after 30 s), then a fresh start.
    pub async fn restart_daemon(&self) -> Result<()> {
        let pid = fs::read_to_string(self.paths().pid_file())
            .with_context(|| format!("{} has no pid file: is its daemon running?", self.name))?;
        procs::signal(
            &[pid.trim().parse().context("a pid file without a pid")?],
            "TERM",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !procs::of_node(&self.name).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill();
        self.start_daemon().await
    }

    /// Cuts the node off the network (its link goes down); its daemon keeps running.
    pub fn cut(&self) -> Result<()> {
        sh::run("ip", &["link", "set", &self.veth(), "down"]).map(drop)
    }

    /// Plugs a cut node back in.
    pub fn reconnect(&self) -> Result<()> {
        sh::run("ip", &["link", "set", &self.veth(), "up"]).map(drop)
    }

    /// Kills the node and removes everything it had: namespace, veth, directories.
    pub fn destroy(&self) -> Result<()> {
        self.kill();
        sh::run_quiet("ip", &["link", "del", &self.veth()]);
        sh::run_quiet("ip", &["netns", "del", &self.netns()]);
        crate::cleanup::remove_cgroups(&format!("{}{}", layout::CGROUP_PREFIX, self.name));
        for dir in [self.paths().run, self.paths().data] {
            if dir.exists() {
                fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
        }
        Ok(())
    }
}

/// An instance id of the 17-hex-digit form EC2 uses today, from the kernel's random source.
fn made_up_instance_id() -> Result<String> {
    let bytes = fs::read("/proc/sys/kernel/random/uuid").context("cannot read a random uuid")?;
    let hex: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(17)
        .collect();
    Ok(format!("i-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_has_a_valid_instance_id_and_an_ec2_style_hostname() {
        let node = Node::new(Role::Worker, 2, 5).expect("node");
        assert_eq!(node.name, "w2");
        assert_eq!(node.ip, Ipv4Addr::new(10, 77, 0, 15));
        assert_eq!(node.hostname, "ip-10-77-0-15");
        swarm_aws::ids::InstanceId::try_from(node.instance_id.as_str()).expect("valid instance id");
    }
}
