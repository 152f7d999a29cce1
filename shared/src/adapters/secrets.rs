//! The stack's secrets in Secrets Manager, with `aws-sdk-secretsmanager`: the two of the
//! Docker API's TLS, the CA (read and written by the managers) and the processor's client
//! certificate (written by the manager that made the CA, read by the processor); and the two
//! join tokens ([`TokenSecrets`]), each readable only by the roles that join with it. The
//! stack creates them holding `{}`, which reads here as "not made yet".

use aws_sdk_secretsmanager::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::{JoinToken, JoinTokens, TokenRole};
use crate::error::Error;
use crate::ports::TokenStore;

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

/// A join token as its secret holds it: `{"token": "SWMTKN-..."}`.
#[derive(serde::Deserialize, Serialize)]
struct TokenSecret {
    token: String,
}

/// The join tokens' secrets. A worker knows only the worker token's secret (and its role may
/// read only that one); a manager knows both.
#[derive(Clone)]
pub struct TokenSecrets {
    secrets: Secrets,
    manager: Option<String>,
    worker: String,
}

impl TokenSecrets {
    /// The secrets `worker` (the worker token's) and, on a manager, `manager`.
    pub fn new(secrets: Secrets, manager: Option<String>, worker: String) -> Self {
        Self {
            secrets,
            manager,
            worker,
        }
    }

    /// The secret of `role`'s token, if this node knows it.
    fn id(&self, role: TokenRole) -> Result<&str, Error> {
        match role {
            TokenRole::Worker => Ok(&self.worker),
            TokenRole::Manager => self
                .manager
                .as_deref()
                .ok_or_else(|| Error::MalformedSecret {
                    secret: "the manager join token".into(),
                    reason: "this node was given no secret for it (MANAGER_TOKEN_SECRET)".into(),
                }),
        }
    }
}

impl TokenStore for TokenSecrets {
    async fn read(&self, role: TokenRole) -> Result<Option<JoinToken>, Error> {
        let id = self.id(role)?;
        Ok(self
            .secrets
            .read::<TokenSecret>(id)
            .await?
            .map(|secret| JoinToken::new(secret.token)))
    }

    async fn write(&self, tokens: &JoinTokens) -> Result<(), Error> {
        for role in [TokenRole::Manager, TokenRole::Worker] {
            let id = self.id(role)?;
            let token = tokens.of(role);
            // Written only when it differs: a new version on every boot would be noise in the
            // secret's history (and in CloudTrail).
            let current = self.secrets.read::<TokenSecret>(id).await?;
            if current.is_none_or(|c| c.token != token.expose()) {
                self.secrets
                    .write(
                        id,
                        &TokenSecret {
                            token: token.expose().to_owned(),
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
