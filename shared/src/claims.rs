//! The claims Omnichannel requires (`sub`, `iss`, `iat`, `exp`), plus `nbf`, `jti` and the
//! optional `lwicontexts`, and the policy that fills them in.

use crate::context::CustomContext;
use crate::keys::SigningKey;
use crate::{Error, Problem, ProblemCode, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The longest token lifetime the service accepts: the widget refetches at `exp`, and Power
/// Pages, Microsoft's own issuer, caps it at one hour.
pub const MAX_TTL: i64 = 3600;
/// Longest accepted `sub`.
pub const MAX_SUBJECT_CHARS: usize = 256;

/// The payload of a minted token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The Dataverse contact or account the chat is linked to.
    pub sub: String,
    /// This service's issuer name.
    pub iss: String,
    /// Issued at (backdated by the clock-skew allowance).
    pub iat: i64,
    /// Not before (same as `iat`).
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique token id, for audit trails.
    pub jti: String,
    /// The custom context, serialized: a JSON *string*, as Omnichannel requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lwicontexts: Option<String>,
}

/// How tokens are issued: issuer, lifetime and clock-skew allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The `iss` claim.
    pub issuer: String,
    /// Lifetime in seconds (at most [`MAX_TTL`]).
    pub ttl: i64,
    /// Seconds by which `iat`/`nbf` are backdated so that a verifier whose clock runs a little
    /// behind does not see a token from the future.
    pub skew: i64,
}

impl TokenPolicy {
    /// The claims for `sub` with `context`, issued at `now`.
    pub fn claims(&self, sub: &str, context: &CustomContext, now: i64) -> Result<Claims> {
        check_subject(sub)?;
        let issued = now - self.skew;
        Ok(Claims {
            sub: sub.to_owned(),
            iss: self.issuer.clone(),
            iat: issued,
            nbf: issued,
            exp: now + self.ttl,
            jti: random_id()?,
            lwicontexts: (!context.is_empty()).then(|| context.to_lwicontexts()),
        })
    }
}

/// A signed token with what clients need to cache it.
#[derive(Debug, Clone, Serialize)]
pub struct MintedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `exp`.
    pub expires_at: i64,
    /// The key that signed it.
    pub kid: String,
}

/// Signs `claims` with `key`, which the ring holds (custody `secret`).
pub fn mint(key: &SigningKey, claims: &Claims) -> Result<MintedToken> {
    Ok(MintedToken {
        token: encode(key, claims)?,
        expires_at: claims.exp,
        kid: key.kid.clone(),
    })
}

/// A service that signs with keys it never hands out (AWS KMS in custody `kms`).
pub trait RemoteSigner: Send + Sync {
    /// The RSASSA-PKCS1-v1_5 SHA-256 signature of `message` by the key `key_ref` names. Its
    /// failures are [`Error::KeyService`], with nothing of the service's own text for clients.
    fn sign<'a>(
        &'a self,
        key_ref: &'a str,
        message: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>>> + Send + 'a>>;
}

/// Signs `claims` with `key`: here when the ring holds it, through `remote` when KMS does.
///
/// The compact form is written here for a remote key because jsonwebtoken's `JwtSigner` is
/// synchronous: blocking on KMS's network call inside it would stall the current-thread
/// runtime's every other request; the header and claims are the same bytes `encode` signs.
pub async fn mint_with(
    key: &SigningKey,
    claims: &Claims,
    remote: Option<&dyn RemoteSigner>,
) -> Result<MintedToken> {
    let Some(key_ref) = key.kms_key() else {
        return mint(key, claims);
    };
    let remote = remote.ok_or(Error::Config {
        var: "CHAT_AUTH_KEY_CUSTODY",
        reason: "the ring's keys are in KMS, which only the Secrets Manager store reaches".into(),
    })?;
    let part = |json: Vec<u8>| URL_SAFE_NO_PAD.encode(json);
    let header = serde_json::to_vec(&key.header).map_err(|_| Error::Crypto("header"))?;
    let payload = serde_json::to_vec(claims).map_err(|_| Error::Crypto("claims"))?;
    let input = format!("{}.{}", part(header), part(payload));
    let signature = remote.sign(key_ref, input.as_bytes()).await?;
    Ok(MintedToken {
        token: format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        expires_at: claims.exp,
        kid: key.kid.clone(),
    })
}

/// `base64url(header).base64url(payload).base64url(RS256 signature)` for any JSON payload,
/// by `jsonwebtoken::encode` with the crate's RS256 signer.
pub fn encode<T: Serialize>(key: &SigningKey, payload: &T) -> Result<String> {
    crate::crypto::install();
    jsonwebtoken::encode(&key.header, payload, key.local()?).map_err(|_| Error::Crypto("sign"))
}

/// A subject must be a non-empty, printable identifier of bounded length.
pub fn check_subject(sub: &str) -> Result<(), Problem> {
    let chars = sub.chars().count();
    if chars == 0 || chars > MAX_SUBJECT_CHARS || sub.chars().any(char::is_control) {
        return Err(Problem::new(
            ProblemCode::InvalidSubject,
            format!(
                "the subject must be 1 to {MAX_SUBJECT_CHARS} printable characters (ideally the contact's GUID)"
            ),
        ));
    }
    Ok(())
}

/// True for the hyphenated GUID form Dataverse record ids take (`8-4-4-4-12` hex digits).
/// Written here because the uuid crate's parser also takes the braced, URN and bare forms.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// 128 random bits, base64url: a `jti`, or a per-run secret.
pub fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("random"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingState;
    use serde_json::{Value, json};

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: "contosohelp.com".into(),
            ttl: 900,
            skew: 30,
        }
    }

    #[test]
    fn claims_are_backdated_and_carry_context_as_a_string() {
        let mut ctx = CustomContext::new();
        ctx.insert_json("msdyn_cartvalue", &json!("10000")).unwrap();
        let c = policy().claims("87b4d06c", &ctx, 1_000_000).unwrap();
        assert_eq!((c.iat, c.nbf, c.exp), (999_970, 999_970, 1_000_900));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["lwicontexts"], json!(r#"{"msdyn_cartvalue":"10000"}"#));
        assert_eq!(c.jti.len(), 22);
        let empty = policy().claims("x", &CustomContext::new(), 0).unwrap();
        assert!(
            serde_json::to_value(&empty)
                .unwrap()
                .get("lwicontexts")
                .is_none()
        );
    }

    #[test]
    fn jti_is_unique() {
        let a = policy().claims("x", &CustomContext::new(), 0).unwrap();
        let b = policy().claims("x", &CustomContext::new(), 0).unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn bad_subjects_are_refused() {
        for sub in ["", "a\nb", &"x".repeat(257)] {
            assert_eq!(
                policy()
                    .claims(sub, &CustomContext::new(), 0)
                    .unwrap_err()
                    .code(),
                "invalid_subject"
            );
        }
    }

    #[test]
    fn minted_header_is_rs256_with_the_thumbprint_kid() {
        let ring = RingState::generate(0, 86_400).unwrap();
        let loaded = ring.load().unwrap();
        let c = policy().claims("s", &CustomContext::new(), 0).unwrap();
        let t = mint(&loaded.signer, &c).unwrap();
        let header = t.token.split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": ring.current.kid})
        );
        assert_eq!(t.kid, ring.current.kid);
        assert_eq!(t.expires_at, 900);
    }
}
