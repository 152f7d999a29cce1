//! Engine API calls as its own JSON, for what must be written back whole: a service's spec.
//! The Engine API updates a service by replacing its spec, so a spec read through a typed
//! model and written back loses every field the model names otherwise (the daemon writes a
//! container's health check as `Healthcheck`, bollard's model reads `HealthCheck`): the
//! service would lose its health check and, its task template changed, restart every task.
//! Read and written as JSON, every field is kept byte for byte but the ones changed.
//!
//! One connection per call (these calls are rare: two per surged service and drain), over
//! the endpoint's own transport: a Unix socket, TCP, or TCP with the processor's mutual TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::docker::TlsFiles;
use crate::calls::{self, Outcome};

/// How long one call may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `method path` (`body` as JSON) to the Engine API at `endpoint`; the answer's JSON.
/// A status other than 2xx is an error as bollard would give it (so the adapter's readings of
/// Docker's errors apply); `api` names the call in the counts (`GET /services/ID`).
pub async fn call(
    endpoint: &str,
    tls: Option<&TlsFiles>,
    method: hyper::Method,
    path: &str,
    body: Option<&serde_json::Value>,
    api: &'static str,
) -> Result<serde_json::Value, bollard::errors::Error> {
    let sent = Instant::now();
    let answer = tokio::time::timeout(TIMEOUT, send(endpoint, tls, method, path, body)).await;
    let answer = answer.unwrap_or_else(|_| Err(bollard::errors::Error::RequestTimeoutError));
    calls::record_timed(
        calls::DOCKER,
        api,
        Outcome::of_docker(&answer),
        Some(sent.elapsed()),
    );
    answer
}

async fn send(
    endpoint: &str,
    tls: Option<&TlsFiles>,
    method: hyper::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, bollard::errors::Error> {
    let io_error = |error: std::io::Error| bollard::errors::Error::IOError { err: error };
    let body = body
        .map(serde_json::to_vec)
        .transpose()?
        .unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let (status, bytes) = if let Some(socket) = endpoint.strip_prefix("unix://") {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(io_error)?;
        exchange(stream, request).await?
    } else {
        let address = endpoint
            .strip_prefix("tcp://")
            .unwrap_or(endpoint)
            .trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(io_error)?;
        stream.set_nodelay(true).map_err(io_error)?;
        match tls {
            None => exchange(stream, request).await?,
            Some(files) => {
                let config = super::mutual_tls::config(endpoint, files).map_err(|_| {
                    bollard::errors::Error::CertParseError {
                        path: files.dir.clone(),
                    }
                })?;
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
                        bollard::errors::Error::CertParseError {
                            path: files.dir.clone(),
                        }
                    })?;
                let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, stream)
                    .await
                    .map_err(io_error)?;
                exchange(stream, request).await?
            }
        }
    };
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(bollard::errors::Error::DockerResponseServerError {
            status_code: status.as_u16(),
            message,
        });
    }
    if bytes.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// One request and its answer over `io`, HTTP/1.1.
async fn exchange<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), bollard::errors::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // The connection is driven beside the request; it ends with the answer.
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}
