//! The local test bed: a real multi-node Docker Swarm on one machine (one `dockerd` per
//! network namespace, on a bridge of its own) and moto server for the AWS APIs, used by the
//! end-to-end tests, the demo and the benchmarks.
//!
//! `testbed up` makes it and records it in a state file; [`Testbed::load`] reads that file
//! from any process; `testbed down` removes everything, by name, even after a killed run.

pub mod autoscaling;
pub mod balancer;
pub mod cleanup;
pub mod docker;
pub mod http;
pub mod image;
pub mod layout;
pub mod moto;
pub mod network_balancer;
pub mod node;
pub mod procs;
pub mod service;
pub mod sh;
pub mod tls;
pub mod wait;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

pub use node::{Node, Role};

/// How long a node may take to show `Ready` after it joined.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The running test bed, as recorded in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Testbed {
    /// Every node, in the order they were made.
    pub nodes: Vec<Node>,
    /// moto's endpoint URL.
    pub aws_endpoint: String,
    /// API seconds per real second in the Auto Scaling emulator.
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    /// The next free address index (addresses are never reused within one test bed).
    next_index: u8,
    /// The highest node number given per role (`m7`: 7). Names are never reused within one
    /// test bed either: a node being torn down is out of the state file but still has its
    /// namespace, and a new node of the same name would lose its own to that teardown.
    #[serde(default)]
    last_numbers: std::collections::BTreeMap<String, u8>,
}

impl Testbed {
    /// Reads the state of the running test bed.
    pub fn load() -> Result<Self> {
        let path = layout::state_file();
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "the test bed is not up ({} is missing): run `testbed up`",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupt: run `testbed down`", path.display()))
    }

    fn save(&self) -> Result<()> {
        let path = layout::state_file();
        let partial = path.with_extension("json.partial");
        fs::write(&partial, serde_json::to_string_pretty(self)?)?;
        fs::rename(&partial, &path)?;
        Ok(())
    }

    /// Brings the test bed up with `managers` + `workers` nodes in one swarm, all ready, as
    /// AWS would: moto answering with the cluster table made, then the Auto Scaling emulator
    /// (at `time_scale`) launches the two groups, and each node's user data, the node
    /// bootstrap, forms or joins the swarm. Idempotent: run on a test bed that is up, it
    /// restarts what died and changes nothing else.
    pub async fn up(managers: u8, workers: u8, time_scale: f64) -> Result<Self> {
        if managers == 0 {
            bail!("a swarm needs at least one manager");
        }
        preflight()?;
        let bed = {
            // Released before the nodes are launched: the emulator takes it to record them.
            let _lock = lock()?;
            let bed = match Self::load() {
                Ok(bed) => bed,
                Err(_) => Self {
                    nodes: Vec::new(),
                    aws_endpoint: moto::endpoint(),
                    time_scale,
                    next_index: 1,
                    last_numbers: Default::default(),
                },
            };
            create_bridge()?;
            let tarball = image::tarball()?;
            let moto = tokio::task::spawn_blocking(moto::start);
            // Nodes of a test bed that is up already: their network and daemon come back.
            for node in &bed.nodes {
                node.create_network()?;
            }
            futures_util::future::try_join_all(bed.nodes.iter().map(|node| async {
                node.start_daemon().await?;
                image::import(&docker::connect(&node.docker_host()).await?, &tarball).await
            }))
            .await?;
            moto.await.context("moto start panicked")??;
            bed.save()?;
            bed
        };
        create_cluster_table(&bed).await?;
        network_balancer::create()?;
        tls::ensure_ca_and_client()?;
        balancer::start()?;
        start_emulator(&bed, managers, workers)?;
        wait_for_swarm(usize::from(managers) + usize::from(workers)).await?;
        Self::load()
    }

    fn allocate(&mut self, role: Role, number: u8) -> Result<Node> {
        if self.next_index > 200 {
            bail!("the test bed subnet is full");
        }
        let node = Node::new(role, number, self.next_index)?;
        self.next_index += 1;
        self.nodes.push(node.clone());
        Ok(node)
    }

    /// The managers, in the order they were made.
    pub fn managers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Manager)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("the test bed has no node `{name}`"))
    }

    /// A client of the node's daemon.
    pub async fn docker(&self, node: &Node) -> Result<Docker> {
        docker::connect(&node.docker_host()).await
    }

    /// A client of the first manager that answers and is in the swarm, skipping dead or cut
    /// ones.
    pub async fn manager(&self) -> Result<Docker> {
        Ok(self.manager_with_ip().await?.0)
    }

    /// [`Testbed::manager`], with the manager's address.
    async fn manager_with_ip(&self) -> Result<(Docker, std::net::Ipv4Addr)> {
        for node in self.managers() {
            if let Ok(docker) = docker::connect(&node.docker_host()).await
                && docker.list_nodes(None).await.is_ok()
            {
                return Ok((docker, node.ip));
            }
        }
        bail!("no manager of the test bed answers")
    }

    /// Adds a node of `role` to the running test bed: its namespace, daemon, image, and its
    /// join to the swarm. Safe to call from several processes at once.
    pub async fn add_node(role: Role) -> Result<Node> {
        let node = Self::allocate_node(role)?;
        node.provision().await?;
        Self::load()?.join_node(&node).await?;
        Ok(node)
    }

    /// Records a new node of `role` (name, address, instance id) in the state file, under its
    /// lock; [`Node::provision`] then makes it.
    pub fn allocate_node(role: Role) -> Result<Node> {
        let _lock = lock()?;
        let mut bed = Self::load()?;
        let key = role.letter().to_string();
        let number = bed
            .nodes
            .iter()
            .filter(|n| n.role == role)
            .filter_map(|n| n.name[1..].parse::<u8>().ok())
            .chain(bed.last_numbers.get(&key).copied())
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .context("the test bed has used every node name of this role")?;
        bed.last_numbers.insert(key, number);
        let node = bed.allocate(role, number)?;
        bed.save()?;
        Ok(node)
    }

    /// Joins a provisioned node to the swarm as its role says, through the first manager that
    /// answers, and waits until the swarm shows it ready. Idempotent.
    pub async fn join_node(&self, node: &Node) -> Result<()> {
        let docker = docker::connect(&node.docker_host()).await?;
        let (manager, manager_ip) = self.manager_with_ip().await?;
        let tokens = docker::join_tokens(&manager).await?;
        let token = match node.role {
            Role::Manager => tokens.manager,
            Role::Worker => tokens.worker,
        };
        docker::join_swarm(&docker, node.ip, &format!("{manager_ip}:2377"), &token).await?;
        let expected = HashMap::from([(node.instance_id.clone(), node.hostname.clone())]);
        docker::wait_until_ready(&manager, &expected, READY_TIMEOUT).await
    }

    /// Removes a node from the test bed for good: kills it, deletes its namespace and data,
    /// and forgets it. (Its entry in the swarm stays, as with a terminated instance.)
    pub fn destroy_node(name: &str) -> Result<()> {
        let node = {
            // The lock only for the state file: the teardown below takes seconds, and every
            // other change of the test bed (the emulator's launches) waits on this lock.
            let _lock = lock()?;
            let mut bed = Self::load()?;
            let node = bed.node(name)?.clone();
            bed.nodes.retain(|n| n.name != name);
            bed.save()?;
            node
        };
        node.destroy()
    }

    /// The environment through which the AWS SDK (and the `aws` CLI) reach moto: the standard
    /// endpoint and credential settings, nothing specific to tests.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.aws_endpoint.clone()),
            ("AWS_ENDPOINT_URL_AUTO_SCALING", autoscaling::endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            // The `aws` CLI (v1) reads only this one.
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
    }
}

/// Removes the whole test bed; returns what could not be removed (empty when all is gone).
pub fn down() -> Vec<String> {
    cleanup::down()
}

fn default_time_scale() -> f64 {
    layout::DEFAULT_TIME_SCALE
}

/// Starts the Auto Scaling emulator (`testbed emulate`, this same program) unless it
/// answers, with the two groups at `managers` and `workers` instances.
fn start_emulator(bed: &Testbed, managers: u8, workers: u8) -> Result<()> {
    if autoscaling::answers() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the testbed program")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["emulate", "--time-scale", &bed.time_scale.to_string()])
        .args([
            "--managers",
            &managers.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .envs(bed.aws_env());
    procs::start_server(
        command,
        &Path::new(layout::DATA_DIR).join("autoscaling.log"),
        autoscaling::answers,
    )
}

/// Makes the stack's cluster table and its join tokens' secrets in moto (as the template
/// does), unless they exist.
async fn create_cluster_table(bed: &Testbed) -> Result<()> {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(&bed.aws_endpoint)
        .region(aws_config::Region::new(autoscaling::model::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "testbed"),
        ))
        .build();
    create_table(
        &aws_sdk_dynamodb::Client::new(&config),
        layout::CLUSTER_TABLE,
    )
    .await?;
    create_token_secrets(
        &aws_sdk_secretsmanager::Client::new(&config),
        layout::CLUSTER_TABLE,
    )
    .await
}

/// The names of the join tokens' secrets that go with the cluster table `table`: the
/// manager token's and the worker token's.
pub fn token_secrets(table: &str) -> (String, String) {
    (
        format!("{table}-manager-join-token"),
        format!("{table}-worker-join-token"),
    )
}

/// Makes the join tokens' secrets of the cluster table `table` ([`token_secrets`]) as the
/// stack makes them, holding `{}`, unless they exist (then they may hold a swarm's tokens:
/// left as they are).
pub async fn create_token_secrets(
    secrets: &aws_sdk_secretsmanager::Client,
    table: &str,
) -> Result<()> {
    let (manager, worker) = token_secrets(table);
    for name in [manager, worker] {
        let created = secrets
            .create_secret()
            .name(&name)
            .secret_string("{}")
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) => {}
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "cannot create the secret {name}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(error)
                ));
            }
        }
    }
    Ok(())
}

/// Makes a table shaped as the stack's cluster table (string partition key `pk`, on demand),
/// unless it exists.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let created = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(anyhow::anyhow!(
            "cannot create table {name}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(error)
        )),
    }
}

/// Waits until the emulator has launched `count` nodes and every one is a Ready member of
/// the swarm their bootstrap formed.
async fn wait_for_swarm(count: usize) -> Result<()> {
    let timeout = Duration::from_secs(180);
    wait::until(timeout, Duration::from_millis(200), async || {
        let bed = Testbed::load()?;
        if bed.nodes.len() >= count
            && let Ok(manager) = bed.manager().await
        {
            let expected: HashMap<String, String> = bed
                .nodes
                .iter()
                .map(|n| (n.instance_id.clone(), n.hostname.clone()))
                .collect();
            return docker::wait_until_ready(&manager, &expected, READY_TIMEOUT)
                .await
                .map(Ok);
        }
        Ok(Err(format!(
            "{} of {count} nodes launched and no manager answers: see {}/autoscaling.log and each node's user-data.log",
            bed.nodes.len(),
            layout::DATA_DIR
        )))
    })
    .await
}

/// Checks the tools the test bed runs and that we are root, before touching anything.
fn preflight() -> Result<()> {
    if sh::run("id", &["-u"])?.trim() != "0" {
        bail!("the test bed makes namespaces and bridges: run it as root");
    }
    for tool in [
        "ip",
        "nsenter",
        "unshare",
        "dockerd",
        "containerd",
        "runc",
        "tar",
        "umount",
        "hostname",
    ] {
        if sh::run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            bail!(
                "`{tool}` is missing: run scripts/setup.sh, which installs the test bed's packages"
            );
        }
    }
    if Path::new("/run/containerd/containerd.sock").exists() {
        bail!(
            "a system containerd runs (/run/containerd/containerd.sock): every node's dockerd would share it; stop it first"
        );
    }
    Ok(())
}

/// Holds an exclusive lock on the test bed's state while it is changed.
fn lock() -> Result<fs::File> {
    fs::create_dir_all(layout::RUN_DIR)?;
    let file = fs::File::create(Path::new(layout::RUN_DIR).join("lock"))?;
    file.lock().context("cannot lock the test bed state")?;
    Ok(file)
}

/// The kernel's neighbour (ARP) table limits the test bed needs, by threshold. The table is
/// one for every network namespace of the machine, and its default hard limit (`gc_thresh3`,
/// 1024 entries) is what about 35 nodes that all talk to each other fill: then a new node's
/// first packets go nowhere ("neighbor table overflow!" in the kernel log) and it cannot even
/// read its instance metadata. These hold the subnet's 200 nodes, each with every other as a
/// neighbour.
pub const NEIGHBOUR_LIMITS: [(&str, u64); 3] = [
    ("gc_thresh1", 8_192),
    ("gc_thresh2", 32_768),
    ("gc_thresh3", 65_536),
];

/// Raises the kernel's neighbour table limits to [`NEIGHBOUR_LIMITS`] (never lowers them).
fn raise_neighbour_limits() -> Result<()> {
    for (name, wanted) in NEIGHBOUR_LIMITS {
        let path = format!("/proc/sys/net/ipv4/neigh/default/{name}");
        let current: u64 = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path}"))?
            .trim()
            .parse()
            .with_context(|| format!("{path} is not a number"))?;
        if current < wanted {
            std::fs::write(&path, wanted.to_string())
                .with_context(|| format!("cannot raise {path} to {wanted}"))?;
        }
    }
    Ok(())
}

pub(crate) fn create_bridge() -> Result<()> {
    raise_neighbour_limits()?;
    if !sh::run_quiet("ip", &["link", "show", layout::BRIDGE]) {
        sh::run("ip", &["link", "add", layout::BRIDGE, "type", "bridge"])?;
    }
    let cidr = format!("{}/{}", layout::gateway(), layout::PREFIX_LEN);
    let addrs = sh::run("ip", &["-o", "addr", "show", "dev", layout::BRIDGE])?;
    if !addrs.contains(&format!(" {cidr} ")) {
        sh::run("ip", &["addr", "add", &cidr, "dev", layout::BRIDGE])?;
    }
    // The network load balancer's own address, where its listeners are.
    let balancer = format!("{}/32", network_balancer::address());
    if !addrs.contains(&format!(" {balancer} ")) {
        sh::run("ip", &["addr", "add", &balancer, "dev", layout::BRIDGE])?;
    }
    sh::run("ip", &["link", "set", layout::BRIDGE, "up"]).map(drop)
}
