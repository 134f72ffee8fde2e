//! Single keys: the ring's stored private keys, their parsed signing form, and the public keys
//! verifiers use. Which key signs and when keys come and go is [`crate::ring`]'s business.

use crate::{Error, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Private key bytes (PKCS#8 DER) that never print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretDer(#[serde(with = "b64_std")] Vec<u8>);

impl fmt::Debug for SecretDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDer(<redacted>)")
    }
}

/// Bytes as standard base64 in stored documents.
pub(crate) mod b64_std {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(D::Error::custom)
    }
}

/// When a key was made, starts signing, and stops signing (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTimes {
    /// Generated at.
    pub created: i64,
    /// Starts (or started) signing at; for `next` this is the planned promotion.
    pub activates: i64,
    /// Stops (or stopped) signing at; planned for `current` and `next`.
    pub retires: i64,
}

/// One stored key of the ring: its kid, its schedule, and where its private half lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    /// When it signs: the ring's rules read and move these.
    #[serde(flatten)]
    pub times: KeyTimes,
    /// The private key itself, or in KMS custody only a reference to it.
    #[serde(flatten)]
    pub material: Material,
}

/// Where a key's private half is, by custody (`CHAT_AUTH_KEY_CUSTODY`). Untagged and flattened,
/// so that a ring stored before KMS custody existed reads (and digests) exactly as it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Material {
    /// Custody `kms`: the private half never leaves AWS KMS, and the ring holds only the key's ARN
    /// and the public key KMS gave for it (whose thumbprint is the kid).
    Kms {
        /// The KMS key that signs.
        kms_key: String,
        /// SubjectPublicKeyInfo DER, as KMS's GetPublicKey returns it.
        #[serde(with = "b64_std")]
        spki: Vec<u8>,
    },
    /// Custody `secret`: the PKCS#8 private key, in the signing secret.
    Secret {
        /// PKCS#8 DER.
        pkcs8: SecretDer,
    },
}

impl StoredKey {
    /// Generates a new RSA-2048 key held in the ring itself (custody `secret`).
    pub fn generate(times: KeyTimes) -> Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::Crypto("keygen"))?;
        let der: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| Error::Crypto("pkcs8 encode"))?;
        Ok(StoredKey {
            kid: thumbprint(pair.public_key()),
            times,
            material: Material::Secret {
                pkcs8: SecretDer(der.as_ref().to_vec()),
            },
        })
    }

    /// A key that KMS holds (custody `kms`), from its ARN and the public key KMS returned; the
    /// kid is the public key's thumbprint, so a kid still names exactly one public key.
    pub fn in_kms(kms_key: String, spki: Vec<u8>, times: KeyTimes) -> Result<Self> {
        let public = checked_public(&spki, "KMS public key")?;
        Ok(StoredKey {
            kid: thumbprint(&public),
            times,
            material: Material::Kms { kms_key, spki },
        })
    }

    /// The KMS key that signs for this one, in KMS custody.
    pub fn kms_key(&self) -> Option<&str> {
        match &self.material {
            Material::Kms { kms_key, .. } => Some(kms_key),
            Material::Secret { .. } => None,
        }
    }

    /// Checks the key (as [`StoredKey::validate`] does) and makes it ready to sign: parsed for
    /// jsonwebtoken when the ring holds it, a reference for the signing service when KMS does.
    pub fn parse(&self) -> Result<SigningKey> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let how = match &self.material {
            Material::Secret { pkcs8 } => {
                let pair = self.checked_pair(pkcs8)?;
                // jsonwebtoken takes the PKCS#1 key inside the PKCS#8 from its PEM form; that is
                // what any of its backends signs with.
                let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", &pkcs8.0).as_bytes())
                    .map_err(|e| {
                    Error::corrupt("key ring", format!("key {}: {e}", self.kid))
                })?;
                crate::crypto::remember_as(encoding.as_bytes(), &pair);
                Signing::Local(encoding)
            }
            Material::Kms { kms_key, .. } => {
                self.validate()?;
                Signing::Kms(kms_key.clone())
            }
        };
        Ok(SigningKey {
            kid: self.kid.clone(),
            times: self.times,
            header,
            how,
        })
    }

    /// The public half (SubjectPublicKeyInfo DER): all a key needs once it stops signing.
    pub fn spki(&self) -> Result<Vec<u8>> {
        match &self.material {
            Material::Secret { pkcs8 } => {
                let spki: PublicKeyX509Der<'_> = self
                    .checked_pair(pkcs8)?
                    .public_key()
                    .as_der()
                    .map_err(|_| Error::Crypto("spki encode"))?;
                Ok(spki.as_ref().to_vec())
            }
            Material::Kms { spki, .. } => {
                self.validate()?;
                Ok(spki.clone())
            }
        }
    }

    /// The key, once it is at least 2048 bits and its thumbprint is the stored kid, checked as
    /// [`StoredKey::parse`] does without building a signer: what reading a stored ring needs, so
    /// that a cache refresh does not build signers it throws away.
    pub fn validate(&self) -> Result<()> {
        match &self.material {
            Material::Secret { pkcs8 } => self.checked_pair(pkcs8).map(drop),
            Material::Kms { spki, .. } => {
                let public = checked_public(spki, "key ring")?;
                check_kid(&self.kid, &thumbprint(&public))
            }
        }
    }

    fn checked_pair(&self, pkcs8: &SecretDer) -> Result<std::sync::Arc<KeyPair>> {
        let pair = crate::crypto::parse_pkcs8(&pkcs8.0)
            .map_err(|e| Error::corrupt("key ring", format!("key {}: {e}", self.kid)))?;
        if pair.public_modulus_len() < 256 {
            return Err(Error::corrupt(
                "key ring",
                format!("key {} is shorter than 2048 bits", self.kid),
            ));
        }
        check_kid(&self.kid, &thumbprint(pair.public_key()))?;
        Ok(pair)
    }
}

fn check_kid(stored: &str, actual: &str) -> Result<()> {
    if stored == actual {
        return Ok(());
    }
    Err(Error::corrupt(
        "key ring",
        format!("kid {stored} does not match its key's thumbprint"),
    ))
}

/// An RSA public key of at least 2048 bits from SubjectPublicKeyInfo DER.
pub(crate) fn checked_public(spki: &[u8], what: &'static str) -> Result<PublicKey> {
    let public = PublicKey::from_der(spki).map_err(|e| Error::corrupt(what, e.to_string()))?;
    if public.modulus_len() < 256 {
        return Err(Error::corrupt(what, "shorter than 2048 bits"));
    }
    Ok(public)
}

/// RFC 7638 JWK thumbprint: base64url(SHA-256 of `{"e":..,"kty":"RSA","n":..}`).
pub fn thumbprint(public: &PublicKey) -> String {
    thumbprint_of(
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    )
}

/// RFC 7638 thumbprint from big-endian modulus and exponent.
pub fn thumbprint_of(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// A key ready to sign: parsed for jsonwebtoken, or (KMS custody) the KMS key to ask. Built
/// once per ring version; a parsed key is remembered by [`crate::crypto`], whose RS256 signer
/// uses it.
pub struct SigningKey {
    /// Key id carried in the token header.
    pub kid: String,
    /// When it signs.
    pub times: KeyTimes,
    /// `{"alg":"RS256","typ":"JWT","kid":...}`.
    pub(crate) header: Header,
    pub(crate) how: Signing,
}

/// Who computes the signature.
pub(crate) enum Signing {
    /// This process, with the private key from the ring.
    Local(EncodingKey),
    /// AWS KMS, by this key's ARN ([`crate::claims::RemoteSigner`]).
    Kms(String),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("kms_key", &self.kms_key())
            .field("private", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// The KMS key that signs, in KMS custody.
    pub fn kms_key(&self) -> Option<&str> {
        match &self.how {
            Signing::Kms(arn) => Some(arn),
            Signing::Local(_) => None,
        }
    }

    /// base64url of the RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`, for
    /// tokens whose bytes a test or a probe chooses itself. A KMS key signs only through
    /// [`crate::claims::mint_with`].
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        crate::crypto::install();
        jsonwebtoken::crypto::sign(message, self.local()?, Algorithm::RS256)
            .map_err(|_| Error::Crypto("sign"))
    }

    pub(crate) fn local(&self) -> Result<&EncodingKey> {
        match &self.how {
            Signing::Local(key) => Ok(key),
            Signing::Kms(_) => Err(Error::Crypto("a KMS key signs only in KMS")),
        }
    }
}

/// A public key, ready to verify RS256 signatures through jsonwebtoken.
pub struct VerifyingKey {
    /// Key id.
    pub kid: String,
    key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl VerifyingKey {
    /// From a SubjectPublicKeyInfo (or PKCS#1) DER public key.
    pub fn from_der(kid: impl Into<String>, der: &[u8]) -> Result<Self> {
        Self::checked(kid.into(), DecodingKey::from_rsa_der(der))
    }

    /// From JWK `n` and `e` (big-endian bytes).
    pub fn from_components(kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<Self> {
        Self::checked(kid.into(), DecodingKey::from_rsa_raw_components(n, e))
    }

    /// Parses the key now, so that a bad one is refused when the set loads, not on first use.
    fn checked(kid: String, key: DecodingKey) -> Result<Self> {
        crate::crypto::parse_public(&key)
            .map_err(|e| Error::corrupt("public key", e.to_string()))?;
        Ok(VerifyingKey { kid, key })
    }

    /// True if `signature` (base64url) is a valid RS256 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        crate::crypto::install();
        jsonwebtoken::crypto::verify(signature, message, &self.key, Algorithm::RS256)
            .unwrap_or(false)
    }
}

/// A set of verifying keys looked up by kid.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    revoked: Vec<String>,
}

impl KeySet {
    /// From parsed keys.
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        KeySet {
            keys,
            revoked: Vec::new(),
        }
    }

    /// Also knows which kids were revoked, so that a verifier can name the reason.
    pub fn with_revoked(mut self, revoked: Vec<String>) -> Self {
        self.revoked = revoked;
        self
    }

    /// True when `kid` was revoked by the publisher.
    pub fn is_revoked(&self, kid: &str) -> bool {
        self.revoked.iter().any(|r| r == kid)
    }

    /// The key with this kid.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The only key, when there is exactly one (a token without kid may then use it).
    pub fn single(&self) -> Option<&VerifyingKey> {
        match self.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// base64 (standard) of DER, for the PEM body and stored documents.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoredKey {
        StoredKey::generate(KeyTimes {
            created: 0,
            activates: 0,
            retires: 10,
        })
        .unwrap()
    }

    fn pkcs8(key: &StoredKey) -> &SecretDer {
        match &key.material {
            Material::Secret { pkcs8 } => pkcs8,
            Material::Kms { .. } => unreachable!("generated keys are held in the ring"),
        }
    }

    #[test]
    fn a_kms_key_is_named_by_its_public_key_and_never_signs_here() {
        let local = key();
        let times = local.times;
        let kms = StoredKey::in_kms("arn:aws:kms:r:1:key/k".into(), local.spki().unwrap(), times)
            .unwrap();
        assert_eq!(kms.kid, local.kid, "the kid is the public key's thumbprint");
        let json = serde_json::to_value(&kms).unwrap();
        assert!(json.get("pkcs8").is_none() && json["kms_key"] == "arn:aws:kms:r:1:key/k");
        let back: StoredKey = serde_json::from_value(json).unwrap();
        assert_eq!(back, kms);
        let signer = back.parse().unwrap();
        assert_eq!(signer.kms_key(), Some("arn:aws:kms:r:1:key/k"));
        assert!(signer.sign(b"m").is_err(), "no private half to sign with");
        // A public key under another key's kid is refused, as a private one is.
        let mut renamed = back.clone();
        renamed.kid = key().kid;
        assert_eq!(renamed.validate().unwrap_err().code(), "key_store_corrupt");
        // A stored secret-custody key reads back as one (the untagged form is unambiguous).
        let stored: StoredKey =
            serde_json::from_slice(&serde_json::to_vec(&local).unwrap()).unwrap();
        assert_eq!(stored, local);
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638 section 3.1.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        assert_eq!(
            thumbprint_of(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_remembered_parse_never_vouches_for_other_bytes() {
        let (a, b) = (key(), key());
        let first = crate::crypto::parse_pkcs8(&pkcs8(&a).0).unwrap();
        let again = crate::crypto::parse_pkcs8(&pkcs8(&a).0).unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "the second parse is remembered"
        );
        let again = a.parse().unwrap();
        assert_eq!(again.kid, a.kid);
        // The same key under another kid is still refused: the thumbprint check runs every time.
        let mut renamed = a.clone();
        renamed.kid = b.kid.clone();
        assert_eq!(renamed.parse().unwrap_err().code(), "key_store_corrupt");
        // Any change to the bytes misses and gets the full parse and checks.
        let mut flipped = a.clone();
        if let Material::Secret { pkcs8 } = &mut flipped.material {
            let last = pkcs8.0.len() - 1;
            pkcs8.0[last] ^= 1;
        }
        assert_eq!(flipped.parse().unwrap_err().code(), "key_store_corrupt");
    }

    #[test]
    fn debug_never_shows_private_material() {
        let k = key();
        let b64 = STANDARD.encode(&pkcs8(&k).0);
        let shown = format!("{k:?} {:?}", k.parse().unwrap());
        assert!(!shown.contains(&b64[..40]));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn the_public_half_matches_the_kid() {
        let k = key();
        let public = PublicKey::from_der(&k.spki().unwrap()).unwrap();
        assert_eq!(thumbprint(&public), k.kid);
    }
}
