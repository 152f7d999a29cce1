//! Instance metadata for every node, IMDSv2 only, as the EC2 user guide documents it: a
//! session token from `PUT /latest/api/token` (TTL header, 1 to 21600 s), then
//! `GET /latest/meta-data/...` with that token; no token, 401.
//!
//! One server on the test bed bridge serves every node and knows who asks by the source
//! address, as the real service knows its instance. The AWS SDK's IMDS client reaches it by
//! configuration: `AWS_EC2_METADATA_SERVICE_ENDPOINT=http://10.77.0.1:1338`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use super::Emulator;
use super::model::{ACCOUNT_ID, REGION};
use crate::Testbed;

const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

struct Imds {
    emulator: Arc<Emulator>,
    /// Session tokens: the address they were given to, and when they expire.
    tokens: Mutex<HashMap<String, (IpAddr, Instant)>>,
}

/// The metadata server's routes.
pub fn router(emulator: Arc<Emulator>) -> Router {
    let imds = Arc::new(Imds {
        emulator,
        tokens: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/latest/api/token", put(token))
        .route(
            "/latest/meta-data/",
            get(|s, c, h| metadata(s, c, h, Path(String::new()))),
        )
        .route("/latest/meta-data/{*path}", get(metadata))
        .route("/latest/dynamic/instance-identity/document", get(identity))
        .with_state(imds)
}

async fn token(
    State(imds): State<Arc<Imds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ttl| (1..=21600).contains(ttl));
    let Some(ttl) = ttl else {
        return (
            StatusCode::BAD_REQUEST,
            "missing or invalid X-aws-ec2-metadata-token-ttl-seconds",
        )
            .into_response();
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut tokens = imds
        .tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    tokens.retain(|_, (_, expiry)| *expiry > now);
    tokens.insert(token.clone(), (peer.ip(), now + Duration::from_secs(ttl)));
    (StatusCode::OK, [(TTL_HEADER, ttl.to_string())], token).into_response()
}

/// Who the caller is, from its address.
struct Caller {
    instance_id: String,
    ip: String,
    hostname: String,
    zone: String,
    lifecycle: Option<&'static str>,
    image_id: String,
    instance_type: String,
    tags: Option<Vec<(String, String)>>,
}

impl Imds {
    /// The caller if it holds a valid token and is a node of the test bed.
    fn caller(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<Caller, StatusCode> {
        let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let valid = token.is_some_and(|token| {
            let tokens = self
                .tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tokens
                .get(token)
                .is_some_and(|(ip, expiry)| *ip == peer.ip() && *expiry > Instant::now())
        });
        if !valid {
            return Err(StatusCode::UNAUTHORIZED);
        }
        let IpAddr::V4(ip) = peer.ip() else {
            return Err(StatusCode::NOT_FOUND);
        };
        let bed = Testbed::load().map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let node = bed
            .nodes
            .iter()
            .find(|n| n.ip == ip)
            .ok_or(StatusCode::NOT_FOUND)?;
        let state = self.emulator.lock();
        let instance = state.instances.get(&node.instance_id);
        let configuration =
            instance.and_then(|i| state.launch_configurations.get(&i.launch_configuration));
        let group = instance.and_then(|i| state.groups.get(&i.group));
        let tags = match (configuration, group) {
            (Some(lc), Some(group)) if lc.metadata_tags => {
                let mut tags: Vec<(String, String)> = group
                    .tags
                    .iter()
                    .filter(|t| t.propagate_at_launch)
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect();
                tags.push(("aws:autoscaling:groupName".to_owned(), group.name.clone()));
                Some(tags)
            }
            _ => None,
        };
        Ok(Caller {
            instance_id: node.instance_id.clone(),
            ip: node.ip.to_string(),
            hostname: node.hostname.clone(),
            zone: instance.map_or_else(|| format!("{REGION}a"), |i| i.zone.clone()),
            lifecycle: instance.map(|i| i.state.target()),
            image_id: configuration
                .map_or_else(|| "ami-testbed".to_owned(), |lc| lc.image_id.clone()),
            instance_type: configuration
                .map_or_else(|| "t3.small".to_owned(), |lc| lc.instance_type.clone()),
            tags,
        })
    }
}

async fn metadata(
    State(imds): State<Arc<Imds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    let caller = match imds.caller(peer, &headers) {
        Ok(caller) => caller,
        Err(status) => return status.into_response(),
    };
    let path = path.trim_end_matches('/');
    let value = match path {
        "" => Some(
            "ami-id\nautoscaling/\nhostname\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\ntags/"
                .to_owned(),
        ),
        "instance-id" => Some(caller.instance_id),
        "local-ipv4" => Some(caller.ip),
        "hostname" | "local-hostname" => Some(format!("{}.ec2.internal", caller.hostname)),
        "ami-id" => Some(caller.image_id),
        "instance-type" => Some(caller.instance_type),
        "placement" => Some("availability-zone\nregion".to_owned()),
        "placement/availability-zone" => Some(caller.zone),
        "placement/region" => Some(REGION.to_owned()),
        "autoscaling" => caller.lifecycle.map(|_| "target-lifecycle-state".to_owned()),
        "autoscaling/target-lifecycle-state" => caller.lifecycle.map(str::to_owned),
        "tags" => caller.tags.as_ref().map(|_| "instance".to_owned()),
        "tags/instance" => caller
            .tags
            .as_ref()
            .map(|tags| tags.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join("\n")),
        other => other.strip_prefix("tags/instance/").and_then(|key| {
            caller
                .tags
                .as_ref()
                .and_then(|tags| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
        }),
    };
    match value {
        Some(value) => (StatusCode::OK, value).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn identity(
    State(imds): State<Arc<Imds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match imds.caller(peer, &headers) {
        Ok(caller) => axum::Json(serde_json::json!({
            "accountId": ACCOUNT_ID,
            "availabilityZone": caller.zone,
            "imageId": caller.image_id,
            "instanceId": caller.instance_id,
            "instanceType": caller.instance_type,
            "privateIp": caller.ip,
            "region": REGION,
            "version": "2017-09-30",
        }))
        .into_response(),
        Err(status) => status.into_response(),
    }
}
