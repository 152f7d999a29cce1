//! The managers' Engine API over mutual TLS, on connections that last: one TCP and TLS
//! handshake per manager, not one per call.
//!
//! bollard's own TLS client opens a new connection for every request (its pool keeps no idle
//! connection) and leaves Nagle's algorithm on, so on the processor's path every call cost a
//! TCP and mutual-TLS handshake plus a delayed acknowledgement: about 45 ms each, measured
//! call by call in the demo, for calls a local socket answers in 2. This client is the same
//! rustls and hyper, set up for a processor that talks to the same few managers all day:
//! idle connections kept (and closed by the pool after a minute unused), `TCP_NODELAY`, TCP
//! keepalive, and trust in the swarm's own CA only, not the machine's public roots.

use std::sync::Arc;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::docker::TlsFiles;
use crate::error::Error;

/// How long a connection may wait unused before the pool closes it.
const IDLE: Duration = Duration::from_secs(60);
/// How long a connection may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// The TLS settings of a client that presents the certificate of `files` and trusts only
/// their CA.
pub fn config(endpoint: &str, files: &TlsFiles) -> Result<rustls::ClientConfig, Error> {
    let failed = |source| Error::Endpoint {
        endpoint: endpoint.to_owned(),
        source,
    };
    let cert_error = |path: std::path::PathBuf| bollard::errors::Error::CertParseError { path };
    let (ca, cert, key) = (
        files.dir.join("ca.pem"),
        files.dir.join("cert.pem"),
        files.dir.join("key.pem"),
    );
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(&ca).map_err(|_| failed(cert_error(ca.clone())))? {
        roots
            .add(der.map_err(|_| failed(cert_error(ca.clone())))?)
            .map_err(|_| failed(cert_error(ca.clone())))?;
    }
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|_| failed(cert_error(cert.clone())))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|_| failed(cert_error(key.clone())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
        })
        .map_err(|_| failed(cert_error(cert.clone())))?;
    Ok(config)
}

/// A client of `endpoint` (`tcp://host:2376`) that presents the certificate of `files` and
/// trusts only their CA; `timeout` (seconds) bounds each call.
pub fn client(endpoint: &str, files: &TlsFiles, timeout: u64) -> Result<Docker, Error> {
    let failed = |source| Error::Endpoint {
        endpoint: endpoint.to_owned(),
        source,
    };
    let config = config(endpoint, files)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(30)));
    http.set_connect_timeout(Some(CONNECT));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let pool: Client<_, _> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(https);
    let address = endpoint.replacen("tcp://", "https://", 1);
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let pool = pool.clone();
            async move {
                pool.request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(address),
        timeout,
        API_DEFAULT_VERSION,
    )
    .map_err(failed)
}
