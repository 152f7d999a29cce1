//! The certificates of the managers' Docker Engine API (port 2376, mutual TLS), made in
//! process with `rcgen`: one CA per stack, made once by the first manager; a server
//! certificate per manager, for its private address, made at each boot; one client
//! certificate for the lifecycle processor. The processor trusts only servers signed by the
//! CA, and the managers only clients signed by it.
//!
//! The CA is kept as its certificate and key in PEM; signing rebuilds the issuer from the key
//! and the CA's fixed name, so no certificate parser is needed.
//!
//! Private keys never reach a log: the types holding them print `<redacted>`.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The CA's subject.
const CA_NAME: &str = "swarm-aws docker api ca";
/// The processor's subject.
pub const CLIENT_NAME: &str = "lifecycle-processor";
/// How long everything stays valid. A stack lives long; rotation is replacing the CA
/// secret and the nodes (see the README's security section).
const VALID_YEARS: i32 = 10;

fn failed(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Certificate { what, source }
}

/// Validity from yesterday (clock skew) for [`VALID_YEARS`].
fn validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let start = today.pred_opt().unwrap_or(today);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(
        start.year() + VALID_YEARS,
        start.month() as u8,
        // Every month has a 28th: no 29 February in a year that has none.
        start.day().min(28) as u8,
    );
}

/// The CA's parameters: fixed, so the issuer can be rebuilt from the key alone.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The stack's certificate authority, as kept in its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// The CA certificate (PEM), which both sides trust.
    pub ca_cert: String,
    /// The CA key (PEM): a secret, only the managers may read it.
    pub ca_key: String,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authority { ca_key: <redacted>, .. }")
    }
}

/// A certificate and its key, with the CA that signed it: Docker's `ca.pem`, `cert.pem`,
/// `key.pem`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The CA certificate (PEM) to verify the other side with.
    pub ca: String,
    /// The certificate (PEM).
    pub cert: String,
    /// Its key (PEM): a secret.
    pub key: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Issued { key: <redacted>, .. }")
    }
}

impl Authority {
    /// A new CA with a new key (ECDSA P-256).
    pub fn generate() -> Result<Self, Error> {
        let key = KeyPair::generate().map_err(failed("generate the CA key"))?;
        let mut params = ca_params();
        validity(&mut params);
        let cert = params
            .self_signed(&key)
            .map_err(failed("self-sign the CA"))?;
        Ok(Self {
            ca_cert: cert.pem(),
            ca_key: key.serialize_pem(),
        })
    }

    /// A server certificate for a manager's Docker API at `address`.
    pub fn issue_server(&self, address: IpAddr) -> Result<Issued, Error> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, address.to_string());
        params.subject_alt_names = vec![SanType::IpAddress(address)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// The processor's client certificate.
    pub fn issue_client(&self) -> Result<Issued, Error> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, CLIENT_NAME);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<Issued, Error> {
        validity(&mut params);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let ca_key = KeyPair::from_pem(&self.ca_key).map_err(failed("read the CA key"))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(failed("generate a key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(failed("sign a certificate"))?;
        Ok(Issued {
            ca: self.ca_cert.clone(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

impl Issued {
    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir` (made 0700; the files 0600),
    /// Docker's `DOCKER_CERT_PATH` and `--tlscacert/--tlscert/--tlskey` layout.
    pub fn write_to(&self, dir: &std::path::Path) -> Result<(), Error> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |source| Error::Tls {
            what: format!("write the certificate files to {}", dir.display()),
            source,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)
            .map_err(io)?;
        for (name, text) in [
            ("ca.pem", &self.ca),
            ("cert.pem", &self.cert),
            ("key.pem", &self.key),
        ] {
            // Written beside and renamed: a daemon starting meanwhile never reads half a file.
            let part = dir.join(format!(".{name}.part"));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&part)
                .map_err(io)?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
            std::fs::rename(&part, dir.join(name)).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_names_its_address_and_chains_to_the_ca() {
        let ca = Authority::generate().expect("a CA");
        let issued = ca
            .issue_server("10.0.3.7".parse().expect("an address"))
            .expect("issued");
        assert_eq!(issued.ca, ca.ca_cert);
        assert!(issued.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(issued.key.contains("PRIVATE KEY"));
        assert_ne!(issued.key, ca.ca_key);
    }

    #[test]
    fn keys_never_reach_debug_output() {
        let ca = Authority::generate().expect("a CA");
        let issued = ca.issue_client().expect("issued");
        for text in [format!("{ca:?}"), format!("{issued:?}")] {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(text.contains("<redacted>"));
        }
    }

    #[test]
    fn the_ca_survives_a_round_trip_through_its_secret() {
        let ca = Authority::generate().expect("a CA");
        let json = serde_json::to_string(&ca).expect("serialized");
        let back: Authority = serde_json::from_str(&json).expect("read back");
        back.issue_client().expect("signs after the round trip");
    }
}
