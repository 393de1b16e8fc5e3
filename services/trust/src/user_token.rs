//! The user token: a short-lived JWT, signed with EdDSA (Ed25519) by the
//! users service, whose private key no other program has. It names a
//! customer, or a staff member with the role `staff`. Every service checks
//! it with the public key on every call and acts for exactly that user.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Who issues user tokens, and for whom.
pub const ISSUER: &str = "ledgerline-users";
pub const AUDIENCE: &str = "ledgerline";

/// How long a token is good for, by default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How long after logging in a token may still be renewed.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Staff,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The username.
    pub sub: String,
    pub role: Role,
    /// Issued at, and expires at: Unix seconds.
    pub iat: i64,
    pub exp: i64,
    /// When the user proved who they are (a renewal keeps it).
    pub auth_time: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the key is not a PEM Ed25519 key of the expected kind: {0}")]
    Key(String),
    #[error("the user token is not valid: {0}")]
    Invalid(String),
    #[error("the user token has expired")]
    Expired,
}

/// A new Ed25519 key pair, as PEM (PKCS#8 private key, SPKI public key).
#[derive(Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    pub fn generate() -> Self {
        let signing = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let private_pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes")
            .to_string();
        let public_pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key encodes");
        Self {
            private_pem,
            public_pem,
        }
    }
}

/// Signs tokens: the users service's alone.
#[derive(Clone)]
pub struct Issuer {
    key: EncodingKey,
    lifetime: Duration,
}

/// A signed token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Issuer {
    pub fn from_pem(private_pem: &str, lifetime: Duration) -> Result<Self, TokenError> {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes())
            .map_err(|error| TokenError::Key(error.to_string()))?;
        Ok(Self { key, lifetime })
    }

    /// A token for `username` in `role`, who proved who they are at `auth_time`.
    pub fn issue(
        &self,
        username: &str,
        role: Role,
        auth_time: DateTime<Utc>,
    ) -> Result<Issued, TokenError> {
        let now = Utc::now();
        let expires_at = now + self.lifetime;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: username.to_owned(),
            role,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            auth_time: auth_time.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(|error| TokenError::Key(error.to_string()))?;
        Ok(Issued { token, expires_at })
    }
}

/// Checks tokens: every service has one.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn from_pem(public_pem: &str) -> Result<Self, TokenError> {
        let key = DecodingKey::from_ed_pem(public_pem.as_bytes())
            .map_err(|error| TokenError::Key(error.to_string()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Clocks of one bank's machines agree closely.
        validation.leeway = 5;
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(error.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_only_the_right_key_accepts_it() {
        let keys = KeyPair::generate();
        let issuer = Issuer::from_pem(&keys.private_pem, DEFAULT_LIFETIME).unwrap();
        let verifier = Verifier::from_pem(&keys.public_pem).unwrap();
        let issued = issuer.issue("alice", Role::Customer, Utc::now()).unwrap();
        let claims = verifier.verify(&issued.token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role),
            ("alice", Role::Customer)
        );
        assert!(claims.exp > claims.iat);

        let other = Verifier::from_pem(&KeyPair::generate().public_pem).unwrap();
        assert!(matches!(
            other.verify(&issued.token),
            Err(TokenError::Invalid(_))
        ));

        // Another token's payload under this token's signature is refused.
        let mallory = issuer.issue("mallory", Role::Staff, Utc::now()).unwrap();
        let mut forged: Vec<&str> = issued.token.split('.').collect();
        forged[1] = mallory.token.split('.').nth(1).unwrap();
        assert!(verifier.verify(&forged.join(".")).is_err());
        assert!(verifier.verify("not a token").is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = KeyPair::generate();
        let verifier = Verifier::from_pem(&keys.public_pem).unwrap();
        let now = Utc::now().timestamp();
        // Expired ten seconds ago, beyond the leeway.
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "bob".into(),
            role: Role::Staff,
            iat: now - 20,
            exp: now - 10,
            auth_time: now - 20,
        };
        let key = EncodingKey::from_ed_pem(keys.private_pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap();
        assert!(matches!(verifier.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn the_private_key_is_not_in_debug_output() {
        let keys = KeyPair::generate();
        assert!(!format!("{keys:?}").contains("PRIVATE"));
    }
}
