//! `lifecycle`: the lifecycle event processor.
//!
//! - in AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set), or `lifecycle lambda`: the SQS event
//!   source handler, JSON logs;
//! - `lifecycle serve`: the long-polling consumer of `QUEUE_URL`, until SIGTERM or Ctrl-C;
//! - `lifecycle triage`: reads message bodies on standard input, one per line, and says what
//!   it would do with each (handy to check a captured message by hand).
//!
//! Configuration comes from the environment and is checked before anything starts;
//! `LOG_FORMAT=json` gives JSON logs outside Lambda too.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use lifecycle::config::{Config, ConfigError, TlsMaterial, vars};
use lifecycle::processor::Processor;
use lifecycle::triage::Triage;
use swarm_aws::adapters::autoscaling::AutoScalingHooks;
use swarm_aws::adapters::balancer::NetworkLoadBalancer;
use swarm_aws::adapters::docker::{DockerSwarm, TlsFiles};
use swarm_aws::adapters::dynamodb::DynamoStore;
use swarm_aws::adapters::secrets::Secrets;
use swarm_aws::adapters::sqs::SqsQueue;
use swarm_aws::counted_client;
use swarm_aws::pki::Issued;

const USAGE: &str = "usage: lifecycle [serve | lambda | triage]";

fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let front = std::env::args()
        .nth(1)
        .unwrap_or_else(|| if in_lambda { "lambda" } else { "" }.to_owned());
    // JSON in Lambda (CloudWatch reads the fields), or where LOG_FORMAT=json asks for it.
    let json =
        in_lambda || front == "lambda" || std::env::var("LOG_FORMAT").as_deref() == Ok("json");
    init_logs(json);
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return refuse(&error),
    };
    match front.as_str() {
        "triage" => triage(&config),
        "serve" | "lambda" => {
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            runtime.block_on(async {
                match front.as_str() {
                    "serve" => serve(config).await,
                    _ => lambda(config).await,
                }
            })
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Text logs for a person, JSON for a machine.
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
}

fn refuse(error: &ConfigError) -> ExitCode {
    eprintln!("lifecycle: {error}");
    if let Some(cause) = std::error::Error::source(error) {
        eprintln!("  because: {cause}");
    }
    ExitCode::from(2)
}

/// The processor over the real swarm and Auto Scaling.
async fn processor(
    config: Config,
    sdk: &aws_config::SdkConfig,
) -> Result<Processor<DockerSwarm, AutoScalingHooks>, ConfigError> {
    let hosts = config.require_docker_hosts()?.to_vec();
    let tls = match &config.docker_tls {
        None => None,
        Some(material) => {
            let material = match material {
                TlsMaterial::Secret(id) => TlsMaterial::Pem(read_tls_secret(sdk, id).await?),
                other => other.clone(),
            };
            Some(TlsFiles {
                dir: material.materialize().map_err(|e| ConfigError::Invalid {
                    var: vars::DOCKER_CERT_PATH,
                    reason: format!("cannot write the TLS material to a private directory: {e}"),
                })?,
            })
        }
    };
    let mut swarm = DockerSwarm::new(hosts, tls).fresh_for(config.poll_interval);
    if let Some(table) = &config.cluster_table {
        swarm = swarm.with_directory(DynamoStore::new(
            counted_client!(aws_sdk_dynamodb, sdk),
            table.clone(),
        ));
    }
    Ok(Processor::new(
        swarm,
        AutoScalingHooks::new(counted_client!(aws_sdk_autoscaling, sdk)),
        config,
    ))
}

/// The client certificate the stack's first manager wrote to the secret `id`.
async fn read_tls_secret(sdk: &aws_config::SdkConfig, id: &str) -> Result<Issued, ConfigError> {
    let secrets = Secrets::new(counted_client!(aws_sdk_secretsmanager, sdk));
    match secrets.read::<Issued>(id).await {
        Ok(Some(issued)) => Ok(issued),
        Ok(None) => Err(ConfigError::Invalid {
            var: vars::DOCKER_TLS_SECRET,
            reason: format!(
                "{id} is still empty: the stack's first manager writes it when it boots"
            ),
        }),
        Err(error) => Err(ConfigError::Invalid {
            var: vars::DOCKER_TLS_SECRET,
            reason: match swarm_aws::error::error_chain(&error) {
                Some(chain) => format!("{error}: {chain}"),
                None => error.to_string(),
            },
        }),
    }
}

async fn serve(config: Config) -> ExitCode {
    let Some(queue_url) = config.queue_url.clone() else {
        return refuse(&ConfigError::Missing {
            var: vars::QUEUE_URL,
            hint: "the URL of the lifecycle queue that `serve` consumes",
        });
    };
    let sdk = sdk_config().await;
    let processor = match processor(config, &sdk).await {
        Ok(processor) => Arc::new(processor),
        Err(error) => return refuse(&error),
    };
    let queue = Arc::new(SqsQueue::new(counted_client!(aws_sdk_sqs, &sdk), queue_url));
    // The listener sync follows the services beside the queue, until the same shutdown.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = balancer(processor.config(), &sdk).map(|balancer| {
        let processor = Arc::clone(&processor);
        tokio::spawn(async move {
            processor.follow_listeners(&balancer, None, stopped).await;
        })
    });
    let stopping = async move {
        shutdown().await;
        let _ = stop.send(true);
    };
    lifecycle::serve::serve(queue, processor, stopping).await;
    if let Some(follower) = follower
        && let Err(panic) = follower.await
    {
        tracing::error!(error = %panic, "the listener sync panicked");
    }
    ExitCode::SUCCESS
}

/// The listener sync's load balancer, when the configuration has one.
fn balancer(config: &Config, sdk: &aws_config::SdkConfig) -> Option<NetworkLoadBalancer> {
    let settings = config.listeners.clone()?;
    tracing::info!(
        load_balancer = settings.load_balancer,
        "keeping the load balancer's listeners in step with the published ports"
    );
    Some(NetworkLoadBalancer::new(
        counted_client!(aws_sdk_elasticloadbalancingv2, sdk),
        counted_client!(aws_sdk_autoscaling, sdk),
        settings.load_balancer,
        settings.vpc,
        config.groups.iter().cloned().collect(),
        settings.prefix,
    ))
}

/// The AWS SDK's configuration, from the environment. A throttled or failed call is retried
/// in the standard mode (exponential backoff with full jitter, at most 20 s apart), up to
/// [`AWS_ATTEMPTS`] attempts: a burst of throttling is waited out inside the step, not turned
/// into a failed step and a message shown again. Not the adaptive mode: its client-side rate
/// limiter, after a few throttled calls, held a completion back here for over a minute, past
/// the hook's timeout. `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE` set in the environment win.
async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
        && std::env::var_os("AWS_RETRY_MODE").is_none()
    {
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(AWS_ATTEMPTS),
        );
    }
    loader.load().await
}

/// Attempts of one AWS call before its step fails (the SDK's default is 3).
const AWS_ATTEMPTS: u32 = 8;

/// Completes on SIGTERM (what `docker stop` and systemd send) or Ctrl-C.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn lambda(config: Config) -> ExitCode {
    // With the queue's URL, a record that must come back is shown again soon rather than
    // after the queue's whole visibility timeout (six times the function's).
    let sdk = sdk_config().await;
    let queue = config
        .queue_url
        .as_ref()
        .map(|url| SqsQueue::new(counted_client!(aws_sdk_sqs, &sdk), url.clone()));
    let processor = match processor(config, &sdk).await {
        Ok(processor) => processor,
        Err(error) => return refuse(&error),
    };
    let balancer = balancer(processor.config(), &sdk);
    let (processor, queue, balancer) = (&processor, queue.as_ref(), balancer.as_ref());
    let handler = lambda_runtime::service_fn(move |event| {
        lifecycle::lambda::invoke(processor, queue, balancer, event)
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lifecycle: the Lambda runtime stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Reads message bodies from standard input, one per line, and says what it would do with
/// each. A line that is not UTF-8 is one rejected body among the others, named by its line
/// number: the lines after it are still read.
fn triage(config: &Config) -> ExitCode {
    let mut rejected = false;
    for (index, line) in std::io::stdin().lock().split(b'\n').enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("lifecycle: cannot read standard input: {error}");
                return ExitCode::from(2);
            }
        };
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let triage = Triage::of_body(line, config);
        triage.log(
            &format!("stdin:{}", index + 1),
            &String::from_utf8_lossy(line),
        );
        rejected |= matches!(triage, Triage::Reject(_));
    }
    if rejected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
