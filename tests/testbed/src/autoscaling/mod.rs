//! The Auto Scaling emulator: lifecycle hooks as the AWS API reference and the EC2 Auto
//! Scaling user guide document them, driving the test bed's real swarm nodes.
//!
//! moto stores groups and hooks but never holds an instance in a wait state, publishes no
//! notification and answers `CompleteLifecycleAction` with HTTP 500; the product's whole value
//! lives in that interaction, hence this emulator. It speaks the real query protocol
//! (form-encoded `Action=...`, XML answers and XML errors), so `aws-sdk-autoscaling` and the
//! `aws` CLI reach it unchanged through `AWS_ENDPOINT_URL_AUTO_SCALING`.
//!
//! - [`api`]: the actions and their validation; [`query`] and [`xml`]: the wire format;
//! - [`engine`]: launches and terminations of real nodes, waits, timeouts, capacity;
//! - [`policy`]: zone balancing and the default termination policy;
//! - [`notify`]: the hook notifications to SQS (moto);
//! - [`imds`]: instance metadata (IMDSv2) for every node;
//! - [`clock`]: scaled time, so a one-hour heartbeat timeout can pass in a minute.
//!
//! `testbed up` starts it (`testbed emulate`) with two groups declared, `testbed-managers` and
//! `testbed-workers`, whose instances are the swarm's nodes; `GET /emulator/state` dumps what it
//! holds, history included.

pub mod api;
pub mod clock;
pub mod engine;
pub mod imds;
pub mod model;
pub mod notify;
pub mod policy;
pub mod query;
pub mod rolling;
pub mod xml;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::Utc;
use tokio::sync::Notify;

use crate::{Role, Testbed, layout};
use clock::Clock;
use model::{Group, Instance, LaunchConfiguration, LifecycleState, State, Tag};

/// The emulator: its state, a signal raised on every change that a waiting instance may care
/// about, its clock, and its SQS client.
pub struct Emulator {
    state: Mutex<State>,
    /// Raised whenever an action ends or is extended, or an instance changes state.
    changed: Notify,
    /// The time scale.
    pub clock: Clock,
    sqs: aws_sdk_sqs::Client,
    /// The environment a node's user data runs with (AWS endpoints, instance metadata).
    boot_env: Vec<(String, String)>,
    /// The test bed's target group ([`crate::balancer::TARGET_GROUP_ARN`], HAProxy).
    pub target_group: crate::balancer::TargetGroup,
    /// The registrations of the target groups attached through `AttachTrafficSources` (the
    /// listener sync's, on the network load balancer).
    pub targets: crate::network_balancer::Targets,
}

impl Emulator {
    /// The refusal of a call over the rate a test asked for ([`model::Throttle`]), if this
    /// call of `action` is one: AWS's Query API answers HTTP 400, code `Throttling`, message
    /// "Rate exceeded".
    pub fn throttled(&self, action: &str, params: &query::Params) -> Option<xml::ApiError> {
        let mut state = self.lock();
        let group = match params.optional("AutoScalingGroupName") {
            Some(group) => Some(group.to_owned()),
            None => params
                .list("InstanceIds")
                .first()
                .and_then(|id| state.instances.get(*id))
                .map(|instance| instance.group.clone()),
        }?;
        let rule = state
            .throttles
            .iter_mut()
            .find(|r| r.action == action && r.group == group && r.remaining > 0)?;
        rule.remaining -= 1;
        rule.answered += 1;
        Some(xml::ApiError::new("Throttling", "Rate exceeded"))
    }

    /// An emulator with no groups.
    pub fn new(clock: Clock, sqs: aws_sdk_sqs::Client, boot_env: Vec<(String, String)>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            clock,
            sqs,
            boot_env,
            target_group: crate::balancer::TargetGroup::default(),
            targets: crate::network_balancer::Targets::default(),
        }
    }

    /// The state, locked. Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Declares the test bed's two groups, `testbed-managers` and `testbed-workers`, over two
    /// zones, with launch configurations whose user data runs the node bootstrap (`bootstrap`,
    /// with the stack's role and cluster table), and with the nodes already up as their
    /// in-service instances; each group wants `managers` / `workers` instances, or as many as
    /// it has (a restarted emulator never scales in).
    pub fn adopt(&self, bed: &Testbed, bootstrap: &str, managers: u32, workers: u32) {
        let mut state = self.lock();
        let now = Utc::now();
        let zones = vec![format!("{}a", model::REGION), format!("{}b", model::REGION)];
        for (role, group_name, lc_name) in [
            (Role::Manager, "testbed-managers", "testbed-manager"),
            (Role::Worker, "testbed-workers", "testbed-worker"),
        ] {
            let role_name = if role == Role::Manager {
                "manager"
            } else {
                "worker"
            };
            // As the stack's user data: the role, the table, the join tokens' secrets (a
            // worker is told only its own), and the resource to signal.
            let (manager_token, worker_token) = crate::token_secrets(crate::layout::CLUSTER_TABLE);
            let token_secrets = if role == Role::Manager {
                format!("MANAGER_TOKEN_SECRET={manager_token} WORKER_TOKEN_SECRET={worker_token}")
            } else {
                format!("WORKER_TOKEN_SECRET={worker_token}")
            };
            let user_data = format!(
                "#!/bin/sh\nexport NODE_ROLE={role_name} CLUSTER_TABLE={} {token_secrets} SIGNAL_STACK={} SIGNAL_RESOURCE={group_name} SWARM_ADDRESS_POOL={}\nexec {bootstrap}\n",
                crate::layout::CLUSTER_TABLE,
                model::TESTBED_STACK,
                crate::layout::OVERLAY_POOL,
            );
            state.launch_configurations.insert(
                lc_name.to_owned(),
                LaunchConfiguration {
                    name: lc_name.to_owned(),
                    arn: model::launch_configuration_arn(
                        lc_name,
                        &uuid::Uuid::new_v4().to_string(),
                    ),
                    image_id: "ami-testbed".to_owned(),
                    instance_type: "t3.small".to_owned(),
                    user_data: Some(base64::engine::general_purpose::STANDARD.encode(user_data)),
                    metadata_tags: true,
                    created: now,
                },
            );
            let nodes: Vec<_> = bed.nodes.iter().filter(|n| n.role == role).collect();
            let wanted = if role == Role::Manager {
                managers
            } else {
                workers
            };
            let size = (nodes.len() as u32).max(wanted);
            state.groups.insert(
                group_name.to_owned(),
                Group {
                    name: group_name.to_owned(),
                    arn: model::group_arn(group_name, &uuid::Uuid::new_v4().to_string()),
                    min: 0,
                    max: size.max(1) * 3,
                    desired: size,
                    zones: zones.clone(),
                    launch_configuration: lc_name.to_owned(),
                    tags: vec![Tag {
                        key: model::ROLE_TAG.to_owned(),
                        value: role_name.to_owned(),
                        propagate_at_launch: true,
                    }],
                    created: now,
                    deleting: false,
                    launching_zones: Vec::new(),
                    target_groups: vec![crate::balancer::TARGET_GROUP_ARN.to_owned()],
                    detaching: Vec::new(),
                },
            );
            for (index, node) in nodes.into_iter().enumerate() {
                state.instances.insert(
                    node.instance_id.clone(),
                    Instance {
                        id: node.instance_id.clone(),
                        group: group_name.to_owned(),
                        zone: zones[index % zones.len()].clone(),
                        state: LifecycleState::InService,
                        launch_configuration: lc_name.to_owned(),
                        launched: now,
                        node: node.name.clone(),
                        ip: node.ip,
                        unhealthy: false,
                    },
                );
            }
            state.record(
                group_name,
                None,
                format!("declared, {size} instances wanted"),
            );
        }
        // Nodes already in service are in the load balancer already (a restarted emulator).
        let adopted: Vec<(String, std::net::Ipv4Addr)> = state
            .instances
            .values()
            .filter(|i| i.state == LifecycleState::InService)
            .map(|i| (i.id.clone(), i.ip))
            .collect();
        drop(state);
        if crate::balancer::answers() {
            for (id, ip) in adopted {
                if let Err(error) = self.target_group.register(&id, ip) {
                    tracing::warn!(instance_id = %id, error = %error, "cannot register with the load balancer");
                }
            }
        }
    }
}

/// Runs the emulator: the Auto Scaling API on `api_addrs`, instance metadata on `imds_addr`,
/// until the process is stopped.
pub async fn serve(
    emulator: Arc<Emulator>,
    api_addrs: &[SocketAddr],
    imds_addr: SocketAddr,
) -> Result<()> {
    let api = Router::new()
        .route("/", post(query_api))
        .route("/emulator/state", get(dump))
        .route("/emulator/rolling-update", post(rolling_update))
        .route("/emulator/ec2-terminate", post(ec2_terminate))
        .route("/emulator/spot-notice", post(spot_notice))
        .route("/emulator/throttle", post(throttle))
        .with_state(Arc::clone(&emulator));
    // The network load balancer's listeners, carried by HAProxy to the registrations.
    let following = Arc::clone(&emulator);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    tokio::spawn(async move { crate::network_balancer::follow(elb, &following.targets).await });
    // The target group's health: a registered node enters rotation once its check passes.
    let admitting = Arc::clone(&emulator);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Err(error) = admitting.target_group.admit_healthy() {
                tracing::debug!(error = %error, "load balancer not answering");
            }
        }
    });
    let mut servers = Vec::new();
    for addr in api_addrs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        servers.push(tokio::spawn(
            axum::serve(listener, api.clone()).into_future(),
        ));
    }
    let imds = imds::router(Arc::clone(&emulator));
    let listener = tokio::net::TcpListener::bind(imds_addr)
        .await
        .with_context(|| format!("cannot listen on {imds_addr}"))?;
    servers.push(tokio::spawn(
        axum::serve(
            listener,
            imds.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .into_future(),
    ));
    for server in servers {
        server.await.context("a server task panicked")??;
    }
    Ok(())
}

async fn query_api(AxumState(emulator): AxumState<Arc<Emulator>>, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let params = query::Params::parse(&body);
    let action = params.optional("Action").unwrap_or_default().to_owned();
    let answer = match emulator.throttled(&action, &params) {
        Some(refused) => Err(refused),
        None => api::handle(&emulator, &params).await,
    };
    match answer {
        Ok(result) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml")],
            result.into_response(&action, &request_id),
        )
            .into_response(),
        Err(error) => {
            tracing::info!(
                action,
                code = error.code,
                message = error.message,
                "refused"
            );
            (
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
                [(header::CONTENT_TYPE, "text/xml")],
                error.to_xml(&request_id),
            )
                .into_response()
        }
    }
}

/// `POST /emulator/rolling-update` `{"group": ..., "launch_configuration": ...,
/// "max_replacements": ...}`: starts a rolling update of the group, as CloudFormation's
/// `AutoScalingRollingUpdate` does on a stack update (see [`rolling`]). Without a launch
/// configuration, the group's is copied under a new name (a new image, as far as the swarm
/// can tell).
async fn rolling_update(
    AxumState(emulator): AxumState<Arc<Emulator>>,
    axum::Json(request): axum::Json<rolling::Request>,
) -> Response {
    match rolling::start(&emulator, request) {
        Ok(status) => axum::Json(status).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error).into_response(),
    }
}

/// `POST /emulator/ec2-terminate` `{"instance_id": ...}`: EC2 terminates the instance outside
/// Auto Scaling, as the console, `TerminateInstances` or a Spot reclaim do (see
/// [`Emulator::ec2_terminate`]). Answers once the node is gone.
async fn ec2_terminate(
    AxumState(emulator): AxumState<Arc<Emulator>>,
    axum::Json(request): axum::Json<serde_json::Value>,
) -> Response {
    let Some(id) = request["instance_id"].as_str() else {
        return (StatusCode::BAD_REQUEST, "expected {\"instance_id\": ...}").into_response();
    };
    match emulator.ec2_terminate(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error).into_response(),
    }
}

/// `POST /emulator/throttle` `{"action": ..., "group": ..., "remaining": N}`: the next `N`
/// calls of `action` about `group` are answered `Throttling` ("Rate exceeded", HTTP 400), as
/// Auto Scaling answers a caller over its account's request rate (see [`Emulator::throttled`]).
async fn throttle(
    AxumState(emulator): AxumState<Arc<Emulator>>,
    axum::Json(rule): axum::Json<model::Throttle>,
) -> Response {
    emulator.lock().throttles.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /emulator/spot-notice` `{"instance_id": ..., "queue_arn": ..., "warning": true}`:
/// EC2's Spot interruption warning (or, with `"warning": false`, its rebalance
/// recommendation) for the instance, delivered to the queue as an EventBridge rule would; a
/// warning's instance is reclaimed two minutes later in API time (see
/// [`Emulator::spot_notice`]).
async fn spot_notice(
    AxumState(emulator): AxumState<Arc<Emulator>>,
    axum::Json(request): axum::Json<serde_json::Value>,
) -> Response {
    let (Some(id), Some(queue_arn)) = (
        request["instance_id"].as_str(),
        request["queue_arn"].as_str(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {\"instance_id\": ..., \"queue_arn\": ..., \"warning\": true|false}",
        )
            .into_response();
    };
    let warning = request["warning"].as_bool().unwrap_or(true);
    match emulator.spot_notice(id, queue_arn, warning).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error).into_response(),
    }
}

async fn dump(AxumState(emulator): AxumState<Arc<Emulator>>) -> Response {
    let state = emulator.lock();
    let body = serde_json::json!({
        "time_scale": emulator.clock.scale(),
        "launch_configurations": state.launch_configurations.values().collect::<Vec<_>>(),
        "groups": state.groups.values().collect::<Vec<_>>(),
        "instances": state.instances.values().collect::<Vec<_>>(),
        "hooks": state.hooks.values().collect::<Vec<_>>(),
        "actions": state.actions.values().collect::<Vec<_>>(),
        "history": state.history,
        "signals": state.signals,
        "rolling": state.rolling,
        "throttles": state.throttles,
    });
    axum::Json(body).into_response()
}

/// The Auto Scaling endpoint, as the AWS SDK takes it in `AWS_ENDPOINT_URL_AUTO_SCALING`.
pub fn endpoint() -> String {
    format!("http://127.0.0.1:{}", layout::AUTOSCALING_PORT)
}

/// The instance metadata endpoint as the nodes reach it, for
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
pub fn imds_endpoint() -> String {
    format!("http://{}:{}", layout::gateway(), layout::IMDS_PORT)
}

/// The emulator's own API (`/emulator/...`), on loopback.
pub fn addr() -> SocketAddr {
    ([127, 0, 0, 1], layout::AUTOSCALING_PORT).into()
}

/// Whether the emulator answers.
pub fn answers() -> bool {
    matches!(
        crate::http::get(addr(), "/emulator/state", std::time::Duration::from_secs(5)),
        Ok((200, _))
    )
}

/// The emulator's state dump (`GET /emulator/state`): groups, instances, their history, the
/// rolling updates.
pub fn state() -> Result<serde_json::Value> {
    let (_, body) = crate::http::get(addr(), "/emulator/state", std::time::Duration::from_secs(5))?;
    Ok(serde_json::from_str(&body)?)
}
