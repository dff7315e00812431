//! The console's check of Cognito's ID tokens on AWS: RS256 signatures by a key of the user
//! pool's JWKS (fetched on first use, and again when a token names a key not seen yet), the
//! issuer, the audience, the expiry and `token_use`. It lives here, beside the other AWS glue, so
//! that the JWT library and its crypto are only in the Lambda admin function, never in the local
//! stack.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation, decode, decode_header};
use leadflow_admin::console::cognito::{CognitoSettings, IdTokens, Identity, TokenError};
use serde::Deserialize;
use tokio::sync::RwLock;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: i64 = 60;
/// A key id we do not know is looked up again at most this often (keys rotate; a flood of
/// forged ids must not become a flood of JWKS requests).
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    token_use: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

/// jsonwebtoken's cryptography for the one algorithm a Cognito ID token is signed with: RS256,
/// verified by ring, which the function carries anyway for TLS. jsonwebtoken's own `rust_crypto`
/// feature brought the RustCrypto code of every algorithm (RSA, P-256, P-384, Ed25519: ≈ 350 KB
/// before compression) into the admin function for this one check. It signs nothing, and its JWK
/// helpers (thumbprints, keys from private keys) are jsonwebtoken's stand-ins, which no path here
/// calls.
static RS256_BY_RING: CryptoProvider = CryptoProvider {
    signer_factory: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
    verifier_factory: rs256_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn rs256_verifier(algorithm: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match (algorithm, key.kind()) {
        (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            Ok(Box::new(Rs256 { n: n.clone(), e: e.clone() }))
        }
        (Algorithm::RS256, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

/// A JWK's RSA public key: its modulus and exponent, big-endian.
struct Rs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl signature::Verifier<Vec<u8>> for Rs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        ring::signature::RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// Checks an ID token against the pool's keys: RS256 only (so neither `none` nor a token
/// signed with the public key as an HMAC secret passes), a key of the set, the issuer, the
/// audience, the expiry at `now` and `token_use: id`.
pub fn verify_id_token(
    keys: &JwkSet,
    token: &str,
    issuer: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<Identity, TokenError> {
    // Installed once a process; an `Err` means it is there already.
    let _ = RS256_BY_RING.install_default();
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::WrongAlgorithm(format!("{:?}", header.alg)));
    }
    let jwk = header.kid.as_deref().and_then(|kid| keys.find(kid)).ok_or(TokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    // Expiry is checked below against `now`, which tests can set.
    validation.validate_exp = false;
    let data = decode::<Claims>(token, &key, &validation).map_err(|e| TokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    if claims.exp + LEEWAY_SECONDS <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    if claims.token_use != "id" {
        return Err(TokenError::NotAnIdToken);
    }
    let email = claims.email.filter(|e| !e.trim().is_empty()).ok_or(TokenError::NoEmail)?;
    let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(TokenError::Malformed)?;
    Ok(Identity { email: email.trim().to_ascii_lowercase(), groups: claims.groups, expires_at })
}

/// The user pool's keys, cached, and what a token must say to be this pool's ID token for this
/// app client.
pub struct PoolKeys {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

impl PoolKeys {
    pub fn new(settings: &CognitoSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            issuer: settings.issuer.clone(),
            client_id: settings.client_id.clone(),
            jwks_url: settings.jwks_url.clone(),
            http,
            keys: RwLock::new((JwkSet { keys: Vec::new() }, None)),
        }
    }

    async fn fetch_keys(&self) -> Result<JwkSet, TokenError> {
        let resp =
            self.http.get(&self.jwks_url).send().await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        let resp = resp.error_for_status().map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        resp.json::<JwkSet>().await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))
    }

    /// Verifies an ID token, fetching the pool's keys on first use and again (rate-limited)
    /// when a token names a key not seen yet.
    async fn verify_now(&self, token: &str, now: DateTime<Utc>) -> Result<Identity, TokenError> {
        let (issuer, client) = (&self.issuer, &self.client_id);
        {
            let keys = self.keys.read().await;
            match verify_id_token(&keys.0, token, issuer, client, now) {
                Err(TokenError::UnknownKey) => {}
                other => return other,
            }
            if keys.1.is_some_and(|at| at.elapsed() < JWKS_REFETCH_AFTER) {
                return Err(TokenError::UnknownKey);
            }
        }
        let fresh = self.fetch_keys().await?;
        let mut keys = self.keys.write().await;
        *keys = (fresh, Some(Instant::now()));
        verify_id_token(&keys.0, token, issuer, client, now)
    }
}

impl IdTokens for PoolKeys {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        now: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, TokenError>> + Send + 'a>> {
        Box::pin(self.verify_now(token, now))
    }
}
