//! Where the test bed puts things: names, addresses and paths, in one place, so that `down`
//! can find everything `up` made even when the state file is gone.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Runtime state: sockets, exec roots, pid files, the state file (tmpfs, short paths: a unix
/// socket path must fit in 108 bytes).
pub const RUN_DIR: &str = "/run/swarm-testbed";
/// Each node's data root and logs.
pub const DATA_DIR: &str = "/var/lib/swarm-testbed";
/// What survives `down` because it is slow to make and never changes: the moto virtualenv,
/// the node image tarball.
pub const CACHE_DIR: &str = "/var/cache/swarm-testbed";
/// The bridge every node's veth is attached to; the host's end of the test bed network.
pub const BRIDGE: &str = "tbbr0";
/// Network namespaces are named `tb-<node>`.
pub const NETNS_PREFIX: &str = "tb-";
/// Host-side veth ends are named `tbv-<node>`.
pub const VETH_PREFIX: &str = "tbv-";
/// Containers of node N live under the cgroup `swarm-testbed-N`, so `down` can find and kill
/// them even when their shim is gone.
pub const CGROUP_PREFIX: &str = "swarm-testbed-";
/// The test bed network: the bridge is .1, node `k` (from 1) is .(10 + k).
pub const SUBNET: [u8; 3] = [10, 77, 0];
/// Prefix length of [`SUBNET`].
pub const PREFIX_LEN: u8 = 24;
/// moto server's port on loopback.
pub const MOTO_PORT: u16 = 5000;
/// The overlay networks' address pool, as the stack gives its swarm one outside its VPC:
/// outside the bridge's subnet here.
pub const OVERLAY_POOL: &str = "10.78.0.0/16";
/// The stack's cluster table in moto, through which the nodes' bootstrap forms the swarm.
pub const CLUSTER_TABLE: &str = "testbed-cluster";
/// The managers' Docker Engine API over mutual TLS, as on AWS.
pub const DOCKER_TLS_PORT: u16 = 2376;
/// The Auto Scaling emulator's port (loopback and the bridge).
pub const AUTOSCALING_PORT: u16 = 5001;
/// The instance metadata service's port, on the bridge's address.
pub const IMDS_PORT: u16 = 1338;
/// What the emulator's command line contains, so `down` finds it.
pub const EMULATOR_COMMAND: &str = "testbed emulate";
/// The emulator's default time scale: a one-hour heartbeat timeout passes in a minute.
pub const DEFAULT_TIME_SCALE: f64 = 60.0;
/// The tag of the image imported on every node.
pub const IMAGE: &str = "testbed/busybox:latest";
/// The engine label that carries a node's (made-up) EC2 instance id: the one the processor
/// reads.
pub use swarm_aws::drain::read::INSTANCE_ID_LABEL;

/// The bridge's address: the host as the nodes see it.
pub fn gateway() -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 1)
}

/// The address of the node with this index.
pub fn node_ip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 10 + index)
}

/// The state file `up` writes and every other command reads.
pub fn state_file() -> PathBuf {
    PathBuf::from(RUN_DIR).join("state.json")
}

/// Paths of one node.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// Its runtime dir (socket, exec root, pid file).
    pub run: PathBuf,
    /// Its data root parent (data root, daemon log, daemon config).
    pub data: PathBuf,
}

impl NodePaths {
    /// The paths of the node called `name`.
    pub fn of(name: &str) -> Self {
        Self {
            run: PathBuf::from(RUN_DIR).join(name),
            data: PathBuf::from(DATA_DIR).join(name),
        }
    }

    /// The Docker API socket.
    pub fn socket(&self) -> PathBuf {
        self.run.join("docker.sock")
    }

    /// dockerd's `--exec-root`.
    pub fn exec_root(&self) -> PathBuf {
        self.run.join("exec")
    }

    /// dockerd's `--pidfile`.
    pub fn pid_file(&self) -> PathBuf {
        self.run.join("dockerd.pid")
    }

    /// dockerd's `--data-root`.
    pub fn data_root(&self) -> PathBuf {
        self.data.join("docker")
    }

    /// dockerd's own `--config-file`, so the host's /etc/docker/daemon.json never applies.
    pub fn daemon_config(&self) -> PathBuf {
        self.data.join("daemon.json")
    }

    /// The manager's TLS server material (`ca.pem`, `cert.pem`, `key.pem`).
    pub fn tls(&self) -> PathBuf {
        self.data.join("tls")
    }

    /// dockerd's log.
    pub fn log(&self) -> PathBuf {
        self.data.join("dockerd.log")
    }
}
