//! The processor's configuration, read from the environment once at start and checked there,
//! so that a wrong setting fails the deployment at once with the variable's name, not the
//! first drain an hour later.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use swarm_aws::ids::{GroupName, InvalidId};
use swarm_aws::pki::Issued;
use swarm_aws::sweep::SweepPolicy;

/// Names of the environment variables the processor reads.
pub mod vars {
    /// Comma-separated names of the Auto Scaling groups this stack owns (required).
    pub const GROUPS: &str = "SWARM_GROUPS";
    /// Seconds a drain may take before the hook is completed anyway, loudly (default 900).
    pub const DRAIN_DEADLINE: &str = "DRAIN_DEADLINE_SECONDS";
    /// The SQS queue `serve` long-polls (required by `serve` only; Lambda is given its records).
    pub const QUEUE_URL: &str = "QUEUE_URL";
    /// Comma-separated Docker Engine API endpoints of the swarm's managers, tried in order
    /// (`unix:///var/run/docker.sock`, `tcp://10.0.1.10:2376`); required to process actions.
    pub const DOCKER_HOSTS: &str = "DOCKER_HOSTS";
    /// Directory with `ca.pem`, `cert.pem`, `key.pem` for mutual TLS to `tcp://` endpoints.
    pub const DOCKER_CERT_PATH: &str = "DOCKER_CERT_PATH";
    /// The stack's DynamoDB table holding the cluster record, where the managers are found
    /// (`tcp://address:2376`, mutual TLS) when `DOCKER_HOSTS` is not set or none answers.
    pub const CLUSTER_TABLE: &str = "CLUSTER_TABLE";
    /// The same three as PEM text, for where files are awkward (Lambda): all three or none.
    pub const DOCKER_TLS_CA_PEM: &str = "DOCKER_TLS_CA_PEM";
    /// The processor's client certificate, PEM.
    pub const DOCKER_TLS_CERT_PEM: &str = "DOCKER_TLS_CERT_PEM";
    /// Its private key, PEM. A secret: never logged.
    pub const DOCKER_TLS_KEY_PEM: &str = "DOCKER_TLS_KEY_PEM";
    /// The Secrets Manager secret holding the three as JSON (`ca`, `cert`, `key`), written by
    /// the stack's first manager: what the stack gives the Lambda function.
    pub const DOCKER_TLS_SECRET: &str = "DOCKER_TLS_SECRET";
    /// Seconds a launching instance may take to be a ready swarm node before it is abandoned
    /// (default 600).
    pub const LAUNCH_DEADLINE: &str = "LAUNCH_DEADLINE_SECONDS";
    /// Seconds between lifecycle action heartbeats while waiting (default 60; keep it well
    /// under the hooks' heartbeat timeout).
    pub const HEARTBEAT_INTERVAL: &str = "HEARTBEAT_INTERVAL_SECONDS";
    /// Milliseconds between observations of the swarm while a drain waits (default 100).
    pub const POLL_INTERVAL: &str = "POLL_INTERVAL_MS";
    /// Messages `serve` handles at once (default 64: a waiting drain costs no call of its
    /// own, every drain reads the one view of the swarm and Auto Scaling's states are read
    /// for all at once).
    pub const CONCURRENCY: &str = "CONCURRENCY";
    /// Seconds a message `serve` works on stays hidden, renewed while it works (default 60).
    pub const VISIBILITY_TIMEOUT: &str = "VISIBILITY_TIMEOUT_SECONDS";
    /// Seconds between two membership sweeps of `serve` (default 60; 0 turns its timer off).
    /// In Lambda a scheduled rule invokes the sweep instead.
    pub const SWEEP_INTERVAL: &str = "SWEEP_INTERVAL_SECONDS";
    /// Seconds a node may be Down, its instance in service, before the sweep has the instance
    /// replaced (default 300).
    pub const SWEEP_DOWN_GRACE: &str = "SWEEP_DOWN_GRACE_SECONDS";
    /// Seconds an instance may be in service without a swarm node before the sweep has it
    /// replaced (default 900).
    pub const SWEEP_JOIN_GRACE: &str = "SWEEP_JOIN_GRACE_SECONDS";
    /// `serve`'s metrics port (`host:port`): Prometheus text at `/metrics`. Unset: none.
    pub const METRICS_ADDR: &str = "METRICS_ADDR";
    /// The stack's name: the `Stack` dimension of the metrics in CloudWatch.
    pub const STACK_NAME: &str = "STACK_NAME";
    /// `off` drains as Swarm does (stop-first) instead of scaling each replicated service up
    /// by its tasks on the node first (default `on`; a service opts out with the label
    /// `com.docker.aws.surge=false`).
    pub const SURGE: &str = "SURGE";
    /// The ARN of the Network Load Balancer the listener sync keeps in step with the
    /// services' published ports. Unset: no sync. The three `LISTENERS_*` go together.
    pub const LISTENERS_LOAD_BALANCER: &str = "LISTENERS_LOAD_BALANCER_ARN";
    /// The VPC its target groups are made in.
    pub const LISTENERS_VPC: &str = "LISTENERS_VPC_ID";
    /// The start of the sync's target groups' names and its tag's value, unique to the stack
    /// (letters, digits and hyphens, at most 19).
    pub const LISTENERS_PREFIX: &str = "LISTENERS_PREFIX";
}

/// What the listener sync works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    /// The Network Load Balancer's ARN.
    pub load_balancer: String,
    /// Its VPC.
    pub vpc: String,
    /// The sync's prefix.
    pub prefix: String,
}

/// The listener sync's settings: all three `LISTENERS_*` variables, or none.
fn listener_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ListenerSettings>, ConfigError> {
    let given = [
        vars::LISTENERS_LOAD_BALANCER,
        vars::LISTENERS_VPC,
        vars::LISTENERS_PREFIX,
    ]
    .map(|var| (var, get(var)));
    if given.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    if let Some((var, _)) = given.iter().find(|(_, v)| v.is_none()) {
        return Err(ConfigError::Missing {
            var,
            hint: "the three LISTENERS_* variables go together",
        });
    }
    let [load_balancer, vpc, prefix] = given.map(|(_, v)| v.unwrap_or_default());
    // Not checked for `/net/`: moto writes every load balancer's ARN with `/app/`. A load
    // balancer of another type refuses the sync's TCP listeners, loudly, at the first one.
    if !(load_balancer.starts_with("arn:") && load_balancer.contains(":loadbalancer/")) {
        return Err(ConfigError::Invalid {
            var: vars::LISTENERS_LOAD_BALANCER,
            reason: format!("`{load_balancer}` is not the ARN of a load balancer"),
        });
    }
    let max = swarm_aws::adapters::balancer::MAX_PREFIX;
    if prefix.len() > max
        || prefix.starts_with('-')
        || prefix.ends_with('-')
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ConfigError::Invalid {
            var: vars::LISTENERS_PREFIX,
            reason: format!(
                "`{prefix}` is not 1 to {max} letters, digits and inner hyphens (a target group's name starts with it)"
            ),
        });
    }
    Ok(Some(ListenerSettings {
        load_balancer,
        vpc,
        prefix,
    }))
}

/// Default drain deadline: long enough for Swarm to reschedule a node's tasks, well inside the
/// hook's heartbeat timeout so the processor, not the timeout, decides.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(900);

/// Why the configuration was refused. Every variant names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {var} is required: {hint}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to put in it.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// One of the group names in a variable is not a valid Auto Scaling group name.
    #[error("environment variable {var} holds an invalid group name")]
    InvalidGroup {
        /// The variable.
        var: &'static str,
        /// The rule the name breaks.
        #[source]
        source: InvalidId,
    },
}

/// Where the client's TLS material for the Docker API comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMaterial {
    /// A directory holding `ca.pem`, `cert.pem`, `key.pem` (Docker's `DOCKER_CERT_PATH`).
    Files(PathBuf),
    /// The three as PEM text from the environment (`Issued` never prints the key).
    Pem(Issued),
    /// The id of the Secrets Manager secret the stack's first manager writes them to.
    Secret(String),
}

impl TlsMaterial {
    /// A directory with the three files: the given one, or a private one (mode 0700) the PEM
    /// text is written to. A secret must have been read first (`Pem`).
    pub fn materialize(&self) -> Result<PathBuf, swarm_aws::error::Error> {
        match self {
            Self::Files(dir) => Ok(dir.clone()),
            Self::Pem(issued) => {
                let dir =
                    std::env::temp_dir().join(format!("lifecycle-tls-{}", std::process::id()));
                issued.write_to(&dir)?;
                Ok(dir)
            }
            Self::Secret(id) => Err(swarm_aws::error::Error::MalformedSecret {
                secret: id.clone(),
                reason: "not read yet".into(),
            }),
        }
    }
}

/// The TLS material from `DOCKER_CERT_PATH`, the three PEM variables (all or none), or the
/// secret `DOCKER_TLS_SECRET`.
fn tls_material(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TlsMaterial>, ConfigError> {
    let pem = [
        vars::DOCKER_TLS_CA_PEM,
        vars::DOCKER_TLS_CERT_PEM,
        vars::DOCKER_TLS_KEY_PEM,
    ]
    .map(|var| (var, get(var)));
    let given = pem.iter().filter(|(_, v)| v.is_some()).count();
    if given > 0 {
        if let Some((var, _)) = pem.iter().find(|(_, v)| v.is_none()) {
            return Err(ConfigError::Missing {
                var,
                hint: "the three DOCKER_TLS_*_PEM variables go together",
            });
        }
        for (var, value) in &pem {
            if !value.as_deref().unwrap_or_default().contains("-----BEGIN ") {
                // The value itself is never quoted: it may be a key.
                return Err(ConfigError::Invalid {
                    var,
                    reason: "it is not PEM text (no -----BEGIN line)".to_owned(),
                });
            }
        }
        let [ca, cert, key] = pem.map(|(_, v)| v.unwrap_or_default());
        return Ok(Some(TlsMaterial::Pem(Issued { ca, cert, key })));
    }
    if let Some(id) = get(vars::DOCKER_TLS_SECRET) {
        if get(vars::DOCKER_CERT_PATH).is_some() {
            return Err(ConfigError::Invalid {
                var: vars::DOCKER_TLS_SECRET,
                reason: format!("give it or {}, not both", vars::DOCKER_CERT_PATH),
            });
        }
        return Ok(Some(TlsMaterial::Secret(id)));
    }
    let Some(dir) = get(vars::DOCKER_CERT_PATH).map(PathBuf::from) else {
        return Ok(None);
    };
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        if !dir.join(file).is_file() {
            return Err(ConfigError::Invalid {
                var: vars::DOCKER_CERT_PATH,
                reason: format!("{} has no {file}", dir.display()),
            });
        }
    }
    Ok(Some(TlsMaterial::Files(dir)))
}

/// The processor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The groups whose instances this processor drains; events of any other group are
    /// acknowledged and ignored (a shared queue, or a hook left over from another stack).
    pub groups: BTreeSet<GroupName>,
    /// How long a drain may take before the hook is completed anyway.
    pub drain_deadline: Duration,
    /// How long a launch may take to join before it is abandoned.
    pub launch_deadline: Duration,
    /// The queue `serve` consumes, when set.
    pub queue_url: Option<String>,
    /// The managers' Docker Engine API endpoints.
    pub docker_hosts: Vec<String>,
    /// The table of the cluster record, where the managers are recorded.
    pub cluster_table: Option<String>,
    /// Mutual TLS material for `tcp://` endpoints.
    pub docker_tls: Option<TlsMaterial>,
    /// How often to heartbeat a waiting action.
    pub heartbeat_every: Duration,
    /// How often to look at the swarm while waiting.
    pub poll_interval: Duration,
    /// Messages handled at once by `serve`.
    pub concurrency: usize,
    /// How long a message `serve` works on stays hidden (renewed while it works).
    pub visibility_timeout: Duration,
    /// How often `serve` sweeps the membership; `None`: never on a timer.
    pub sweep_every: Option<Duration>,
    /// The sweep's grace periods.
    pub sweep: SweepPolicy,
    /// Where `serve` answers with its metrics, when set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The stack's name, for the metrics' `Stack` dimension (`swarm` when unset).
    pub stack_name: String,
    /// The listener sync's load balancer, when it runs.
    pub listeners: Option<ListenerSettings>,
    /// Whether services are scaled up before their node drains.
    pub surge: bool,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process
    /// environment (which is shared by every test thread).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str| {
            lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let groups_text = get(vars::GROUPS).ok_or(ConfigError::Missing {
            var: vars::GROUPS,
            hint: "the comma-separated names of the stack's Auto Scaling groups",
        })?;
        let groups = groups_text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                GroupName::try_from(name).map_err(|source| ConfigError::InvalidGroup {
                    var: vars::GROUPS,
                    source,
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if groups.is_empty() {
            return Err(ConfigError::Invalid {
                var: vars::GROUPS,
                reason: "it names no group".to_owned(),
            });
        }

        // A whole number above zero, or the default when unset.
        let positive = |var: &'static str, default: u64| match get(var) {
            None => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(value) if value > 0 => Ok(value),
                _ => Err(ConfigError::Invalid {
                    var,
                    reason: format!("`{text}` is not a whole number above zero"),
                }),
            },
        };
        let drain_deadline = Duration::from_secs(positive(
            vars::DRAIN_DEADLINE,
            DEFAULT_DRAIN_DEADLINE.as_secs(),
        )?);

        let queue_url = get(vars::QUEUE_URL);
        if let Some(url) = &queue_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                var: vars::QUEUE_URL,
                reason: format!("`{url}` is not an http(s) queue URL"),
            });
        }

        let docker_hosts: Vec<String> = get(vars::DOCKER_HOSTS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = docker_hosts
            .iter()
            .find(|h| !(h.starts_with("unix://") || h.starts_with("tcp://")))
        {
            return Err(ConfigError::Invalid {
                var: vars::DOCKER_HOSTS,
                reason: format!("`{bad}` is neither unix:///path nor tcp://host:port"),
            });
        }
        let docker_tls = tls_material(&get)?;
        let sweep_every = match get(vars::SWEEP_INTERVAL).as_deref() {
            Some("0") => None,
            _ => Some(Duration::from_secs(positive(vars::SWEEP_INTERVAL, 60)?)),
        };
        let defaults = SweepPolicy::default();
        let sweep = SweepPolicy {
            down_grace: Duration::from_secs(positive(
                vars::SWEEP_DOWN_GRACE,
                defaults.down_grace.as_secs(),
            )?),
            join_grace: Duration::from_secs(positive(
                vars::SWEEP_JOIN_GRACE,
                defaults.join_grace.as_secs(),
            )?),
        };

        let metrics_addr = match get(vars::METRICS_ADDR) {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| ConfigError::Invalid {
                var: vars::METRICS_ADDR,
                reason: format!("`{text}` is not an address and port such as 0.0.0.0:9102"),
            })?),
        };

        Ok(Self {
            groups,
            drain_deadline,
            launch_deadline: Duration::from_secs(positive(vars::LAUNCH_DEADLINE, 600)?),
            queue_url,
            docker_hosts,
            cluster_table: get(vars::CLUSTER_TABLE),
            docker_tls,
            heartbeat_every: Duration::from_secs(positive(vars::HEARTBEAT_INTERVAL, 60)?),
            poll_interval: Duration::from_millis(positive(vars::POLL_INTERVAL, 100)?),
            concurrency: positive(vars::CONCURRENCY, 64)? as usize,
            visibility_timeout: Duration::from_secs(positive(vars::VISIBILITY_TIMEOUT, 60)?),
            sweep_every,
            sweep,
            metrics_addr,
            stack_name: get(vars::STACK_NAME).unwrap_or_else(|| "swarm".to_owned()),
            listeners: listener_settings(&get)?,
            surge: match get(vars::SURGE).as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        var: vars::SURGE,
                        reason: format!("`{other}` is neither on nor off"),
                    });
                }
            },
        })
    }

    /// The Docker endpoints, or the error that says where managers are to be found:
    /// processing an action needs a manager, triaging a message does not. Empty is fine when
    /// the managers come from the cluster record.
    pub fn require_docker_hosts(&self) -> Result<&[String], ConfigError> {
        if self.docker_hosts.is_empty() && self.cluster_table.is_none() {
            return Err(ConfigError::Missing {
                var: vars::DOCKER_HOSTS,
                hint: "the Docker Engine API endpoints of the swarm's managers, comma-separated (or CLUSTER_TABLE, to find them in the cluster record)",
            });
        }
        Ok(&self.docker_hosts)
    }

    /// Whether this stack owns the group.
    pub fn owns(&self, group: &GroupName) -> bool {
        self.groups.contains(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|var| env.get(var).cloned())
    }

    #[test]
    fn the_groups_are_required_and_the_error_names_the_variable() {
        let err = config(&[]).expect_err("no groups");
        assert!(
            err.to_string()
                .starts_with("environment variable SWARM_GROUPS is required"),
            "{err}"
        );
        let err = config(&[(vars::GROUPS, " , ")]).expect_err("blank groups");
        assert!(err.to_string().contains("SWARM_GROUPS"), "{err}");
    }

    #[test]
    fn the_listener_sync_takes_its_three_variables_together_and_checks_them() {
        let arn =
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/swarm/50dc6c495c0c9188";
        let all = [
            (vars::GROUPS, "workers"),
            (vars::LISTENERS_LOAD_BALANCER, arn),
            (vars::LISTENERS_VPC, "vpc-1"),
            (vars::LISTENERS_PREFIX, "sw-1a2b3c4d"),
        ];
        let settings = config(&all).expect("valid").listeners.expect("a sync");
        assert_eq!(settings.prefix, "sw-1a2b3c4d");
        assert_eq!(config(&all[..1]).expect("valid").listeners, None);
        let err = config(&all[..3]).expect_err("no prefix");
        assert!(err.to_string().contains(vars::LISTENERS_PREFIX), "{err}");
        for (var, bad) in [
            (vars::LISTENERS_PREFIX, "twenty-characters-xx"),
            (vars::LISTENERS_PREFIX, "-starts"),
            (vars::LISTENERS_PREFIX, "has_underscore"),
            (
                vars::LISTENERS_LOAD_BALANCER,
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/swarm/5",
            ),
        ] {
            let mut given = all.to_vec();
            given.retain(|(v, _)| *v != var);
            given.push((var, bad));
            let err = config(&given).expect_err(bad);
            assert!(err.to_string().contains(var), "{bad}: {err}");
        }
    }

    #[test]
    fn groups_are_split_on_commas_and_trimmed() {
        let config =
            config(&[(vars::GROUPS, "swarm-Managers-1, swarm-Workers-2 ,")]).expect("valid");
        assert_eq!(config.groups.len(), 2);
        assert!(config.owns(&"swarm-Workers-2".try_into().expect("valid")));
        assert!(!config.owns(&"someone-else".try_into().expect("valid")));
    }

    #[test]
    fn an_invalid_group_name_is_refused_with_the_variable_and_the_rule() {
        let err = config(&[(vars::GROUPS, "ok,bad\u{7}name")]).expect_err("control char");
        assert_eq!(
            err.to_string(),
            "environment variable SWARM_GROUPS holds an invalid group name"
        );
        let cause = std::error::Error::source(&err).expect("cause").to_string();
        assert!(cause.contains("control characters"), "{cause}");
    }

    #[test]
    fn the_drain_deadline_defaults_and_refuses_nonsense() {
        let ok = config(&[(vars::GROUPS, "g")]).expect("valid");
        assert_eq!(ok.drain_deadline, DEFAULT_DRAIN_DEADLINE);
        let ok = config(&[(vars::GROUPS, "g"), (vars::DRAIN_DEADLINE, "120")]).expect("valid");
        assert_eq!(ok.drain_deadline, Duration::from_secs(120));
        for bad in ["0", "-5", "ten", "1.5"] {
            let err = config(&[(vars::GROUPS, "g"), (vars::DRAIN_DEADLINE, bad)]).expect_err(bad);
            assert!(err.to_string().contains("DRAIN_DEADLINE_SECONDS"), "{err}");
        }
    }

    #[test]
    fn the_sweep_runs_every_minute_unless_turned_off_and_its_graces_refuse_nonsense() {
        let ok = config(&[(vars::GROUPS, "g")]).expect("valid");
        assert_eq!(ok.sweep_every, Some(Duration::from_secs(60)));
        assert_eq!(ok.sweep, SweepPolicy::default());
        let off = config(&[(vars::GROUPS, "g"), (vars::SWEEP_INTERVAL, "0")]).expect("valid");
        assert_eq!(off.sweep_every, None);
        let set = config(&[
            (vars::GROUPS, "g"),
            (vars::SWEEP_INTERVAL, "2"),
            (vars::SWEEP_DOWN_GRACE, "5"),
            (vars::SWEEP_JOIN_GRACE, "30"),
        ])
        .expect("valid");
        assert_eq!(set.sweep_every, Some(Duration::from_secs(2)));
        assert_eq!(set.sweep.down_grace, Duration::from_secs(5));
        assert_eq!(set.sweep.join_grace, Duration::from_secs(30));
        for var in [
            vars::SWEEP_INTERVAL,
            vars::SWEEP_DOWN_GRACE,
            vars::SWEEP_JOIN_GRACE,
        ] {
            let err = config(&[(vars::GROUPS, "g"), (var, "soon")]).expect_err(var);
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn docker_hosts_must_be_unix_or_tcp_and_are_required_only_to_process() {
        let ok = config(&[(vars::GROUPS, "g")]).expect("valid");
        let err = ok.require_docker_hosts().expect_err("none given");
        assert!(err.to_string().contains("DOCKER_HOSTS"), "{err}");
        let ok = config(&[
            (vars::GROUPS, "g"),
            (
                vars::DOCKER_HOSTS,
                "unix:///run/a.sock, tcp://10.0.1.10:2376",
            ),
        ])
        .expect("valid");
        assert_eq!(ok.require_docker_hosts().expect("given").len(), 2);
        let ok =
            config(&[(vars::GROUPS, "g"), (vars::CLUSTER_TABLE, "stack-cluster")]).expect("valid");
        assert!(
            ok.require_docker_hosts()
                .expect("found in the record")
                .is_empty()
        );
        let err = config(&[(vars::GROUPS, "g"), (vars::DOCKER_HOSTS, "10.0.1.10:2376")])
            .expect_err("no scheme");
        assert!(err.to_string().contains("DOCKER_HOSTS"), "{err}");
        let err = config(&[
            (vars::GROUPS, "g"),
            (vars::DOCKER_CERT_PATH, "/nonexistent"),
        ])
        .expect_err("no certificates there");
        assert!(err.to_string().contains("DOCKER_CERT_PATH"), "{err}");
    }

    #[test]
    fn the_queue_url_is_optional_but_must_be_a_url() {
        assert_eq!(
            config(&[(vars::GROUPS, "g")]).expect("valid").queue_url,
            None
        );
        let err =
            config(&[(vars::GROUPS, "g"), (vars::QUEUE_URL, "my-queue")]).expect_err("not a url");
        assert!(err.to_string().contains("QUEUE_URL"), "{err}");
    }
}
