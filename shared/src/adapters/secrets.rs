//! The two secrets of the Docker API's TLS in Secrets Manager, with `aws-sdk-secretsmanager`:
//! the CA (read and written by the managers) and the processor's client certificate
//! (written by the manager that made the CA, read by the processor). The stack creates both
//! holding `{}`, which reads here as "not made yet".

use aws_sdk_secretsmanager::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Secrets Manager, for JSON secrets.
#[derive(Clone)]
pub struct Secrets {
    client: Client,
}

/// The value of a secret that was created but not written yet.
const EMPTY: &str = "{}";

/// How a call on the secret `id` failed (never with its value).
fn failed<E>(call: &'static str, id: &str) -> impl FnOnce(E) -> Error
where
    E: std::error::Error + crate::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    let secret = id.to_owned();
    move |error| Error::SecretsManager {
        call,
        secret,
        source: crate::error::sdk_cause(error),
    }
}

impl Secrets {
    /// Over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The secret `id` as `T`, or `None` while it still holds `{}`.
    pub async fn read<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, Error> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(failed("GetSecretValue", id))?;
        let text = answer.secret_string().unwrap_or(EMPTY).trim();
        if text == EMPTY || text.is_empty() {
            return Ok(None);
        }
        // serde's message could quote the value: say only where it broke.
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| Error::MalformedSecret {
                secret: id.to_owned(),
                reason: format!(
                    "not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })
    }

    /// Writes `value` as the secret's new current version.
    pub async fn write<T: Serialize>(&self, id: &str, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(|e| Error::MalformedSecret {
            secret: id.to_owned(),
            reason: format!("cannot serialize: {e}"),
        })?;
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(text)
            .send()
            .await
            .map_err(failed("PutSecretValue", id))?;
        Ok(())
    }
}
