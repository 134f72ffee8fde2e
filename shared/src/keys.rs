//! The key ring: previous (verify only), current (signs), next (published, not yet signing).
//!
//! Every key is published one full rotation period before it signs and stays published one
//! period after it stops, so a consumer that caches the Public key URL for less than a period
//! never sees a token whose key it lacks. Private keys are parsed once per ring version
//! ([`RingState::load`]) and reused for every signature.

use crate::publish::{PublicKeySet, PublishedKey};
use crate::{Error, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, Mutex};

/// The minimum rotation period: a key must stay published longer than any token lives (1 h).
pub const MIN_ROTATION_PERIOD: i64 = 2 * 3600;

/// Private key bytes (PKCS#8 DER) that never print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretDer(#[serde(with = "b64_std")] Vec<u8>);

impl fmt::Debug for SecretDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDer(<redacted>)")
    }
}

mod b64_std {
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

/// One stored key of the ring: private material plus its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    /// Schedule.
    #[serde(flatten)]
    pub times: KeyTimes,
    /// PKCS#8 private key.
    pub pkcs8: SecretDer,
}

impl StoredKey {
    /// Generates a new RSA-2048 key.
    pub fn generate(times: KeyTimes) -> Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::Crypto("keygen"))?;
        let der: Pkcs8V1Der = pair.as_der().map_err(|_| Error::Crypto("pkcs8 encode"))?;
        Ok(StoredKey {
            kid: thumbprint(pair.public_key()),
            times,
            pkcs8: SecretDer(der.as_ref().to_vec()),
        })
    }

    /// Parses the private key and checks that the stored kid is its thumbprint.
    pub fn parse(&self) -> Result<SigningKey> {
        let pair = parse_pkcs8(&self.pkcs8.0)
            .map_err(|e| Error::corrupt("key ring", format!("key {}: {e}", self.kid)))?;
        if pair.public_modulus_len() < 256 {
            return Err(Error::corrupt(
                "key ring",
                format!("key {} is shorter than 2048 bits", self.kid),
            ));
        }
        let kid = thumbprint(pair.public_key());
        if kid != self.kid {
            return Err(Error::corrupt(
                "key ring",
                format!("kid {} does not match its key's thumbprint", self.kid),
            ));
        }
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#);
        Ok(SigningKey {
            header_b64: URL_SAFE_NO_PAD.encode(header),
            kid,
            times: self.times,
            pair,
        })
    }

    /// The public half in the published form.
    pub fn published(&self, period: i64) -> Result<PublishedKey> {
        let signing = self.parse()?;
        let spki: PublicKeyX509Der = signing
            .pair
            .public_key()
            .as_der()
            .map_err(|_| Error::Crypto("spki encode"))?;
        Ok(PublishedKey {
            kid: self.kid.clone(),
            spki: spki.as_ref().to_vec(),
            activates: self.times.activates,
            retires: self.times.retires,
            expiry: self.times.retires + period,
        })
    }
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

/// How many parsed private keys [`parse_pkcs8`] remembers: a ring holds three, a rotation
/// briefly sees four, and the development identity provider has one.
const PARSED_KEYS: usize = 8;

/// Private keys this process has parsed, by SHA-256 of their PKCS#8 bytes.
///
/// Parsing an RSA private key runs aws-lc's consistency checks (about 0.3 ms, more than half an
/// RS256 signature), and the same key is parsed again and again: every read of a stored ring
/// validates its signing key (`from_json`) and then prepares it (`load`), once per cache
/// refresh, and publishing parses every key of the ring. Identical bytes parse to the same
/// validated key, so a hit returns it; bytes that differ in any way miss and are parsed and
/// checked in full. Only keys of rings this process loaded are held, and at most
/// [`PARSED_KEYS`] of them.
static PARSED: Mutex<Vec<([u8; 32], Arc<KeyPair>)>> = Mutex::new(Vec::new());

fn parse_pkcs8(pkcs8: &[u8]) -> std::result::Result<Arc<KeyPair>, aws_lc_rs::error::KeyRejected> {
    let mut id = [0u8; 32];
    id.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pkcs8).as_ref());
    let parsed = || PARSED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pair)) = parsed().iter().find(|(known, _)| *known == id) {
        return Ok(pair.clone());
    }
    let pair = Arc::new(KeyPair::from_pkcs8(pkcs8)?);
    let mut known = parsed();
    if known.len() >= PARSED_KEYS {
        known.remove(0);
    }
    known.push((id, pair.clone()));
    Ok(pair)
}

/// A parsed private key ready to sign. Built once per ring version.
pub struct SigningKey {
    /// Key id carried in the token header.
    pub kid: String,
    /// Schedule.
    pub times: KeyTimes,
    /// base64url of the fixed header `{"alg":"RS256","typ":"JWT","kid":...}`.
    pub(crate) header_b64: String,
    pub(crate) pair: Arc<KeyPair>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| Error::Crypto("sign"))?;
        Ok(sig)
    }
}

/// A parsed public key, ready to verify RS256 signatures.
pub struct VerifyingKey {
    /// Key id.
    pub kid: String,
    parsed: ParsedPublicKey,
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
        let parsed = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| Error::corrupt("public key", e.to_string()))?;
        Ok(VerifyingKey {
            kid: kid.into(),
            parsed,
        })
    }

    /// From JWK `n` and `e` (big-endian bytes).
    pub fn from_components(kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<Self> {
        let parsed = signature::RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(|e| Error::corrupt("public key", e.to_string()))?;
        Ok(VerifyingKey {
            kid: kid.into(),
            parsed,
        })
    }

    /// True if `signature` is a valid RS256 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }
}

/// A set of verifying keys looked up by kid.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// From parsed keys.
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        KeySet { keys }
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

/// One version of the private ring, as stored (signing secret / `ring.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingState {
    /// Increases by one at every change; stores use it for compare-and-swap.
    pub version: u64,
    /// Seconds between scheduled rotations; also how long a retired key stays published.
    pub rotation_period: i64,
    /// Verify-only key that signed until the last rotation.
    pub previous: Option<StoredKey>,
    /// The signing key.
    pub current: StoredKey,
    /// Published, signs after the next rotation.
    pub next: StoredKey,
}

/// Alias used by hosts: a ring is a [`RingState`].
pub type KeyRing = RingState;

impl RingState {
    /// A first ring: current signs from `now`, next is published for promotion one period on.
    pub fn generate(now: i64, rotation_period: i64) -> Result<Self> {
        check_period(rotation_period)?;
        Ok(RingState {
            version: 1,
            rotation_period,
            previous: None,
            current: StoredKey::generate(KeyTimes {
                created: now,
                activates: now,
                retires: now + rotation_period,
            })?,
            next: StoredKey::generate(next_times(now, rotation_period))?,
        })
    }

    /// Scheduled rotation: next → current, current → previous, a new next, the old previous is
    /// dropped. `rotation_period` may change here (it applies to the new schedule).
    pub fn rotate(&self, now: i64, rotation_period: i64) -> Result<Self> {
        check_period(rotation_period)?;
        let mut previous = self.current.clone();
        previous.times.retires = now;
        let mut current = self.next.clone();
        current.times.activates = now;
        current.times.retires = now + rotation_period;
        Ok(RingState {
            version: self.version + 1,
            rotation_period,
            previous: Some(previous),
            current,
            next: StoredKey::generate(next_times(now, rotation_period))?,
        })
    }

    /// Emergency rotation: the named key is removed at once. Dropping `current` promotes
    /// `next` now (it has been published all along) and makes a new next; dropping `next`
    /// replaces it; dropping `previous` just removes it.
    pub fn drop_key(&self, kid: &str, now: i64) -> Result<Self> {
        let period = self.rotation_period;
        let mut ring = self.clone();
        ring.version += 1;
        if self.previous.as_ref().is_some_and(|p| p.kid == kid) {
            ring.previous = None;
        } else if self.current.kid == kid {
            ring.current = self.next.clone();
            ring.current.times.activates = now;
            ring.current.times.retires = now + period;
            ring.next = StoredKey::generate(next_times(now, period))?;
        } else if self.next.kid == kid {
            ring.next = StoredKey::generate(next_times(now, period))?;
        } else {
            return Err(Error::Rotation(format!("no key {kid:?} in the ring")));
        }
        Ok(ring)
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = &StoredKey> {
        self.previous.iter().chain([&self.current, &self.next])
    }

    /// The public key set this ring publishes.
    pub fn public_set(&self) -> Result<PublicKeySet> {
        Ok(PublicKeySet {
            version: self.version,
            current_kid: self.current.kid.clone(),
            keys: self
                .keys()
                .map(|k| k.published(self.rotation_period))
                .collect::<Result<_>>()?,
        })
    }

    /// Parses every key once; the result signs and verifies without further parsing.
    pub fn load(&self) -> Result<LoadedRing> {
        let kids: Vec<&str> = self.keys().map(|k| k.kid.as_str()).collect();
        for (i, kid) in kids.iter().enumerate() {
            if kids[..i].contains(kid) {
                return Err(Error::corrupt(
                    "key ring",
                    format!("kid {kid} appears twice"),
                ));
            }
        }
        Ok(LoadedRing {
            version: self.version,
            signer: self.current.parse()?,
        })
    }

    /// Parses a stored ring document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let ring: RingState =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("key ring", e.to_string()))?;
        check_period(ring.rotation_period)
            .map_err(|_| Error::corrupt("key ring", "rotation_period is too short"))?;
        ring.load()?;
        Ok(ring)
    }

    /// The stored form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

fn next_times(now: i64, period: i64) -> KeyTimes {
    KeyTimes {
        created: now,
        activates: now + period,
        retires: now + 2 * period,
    }
}

fn check_period(period: i64) -> Result<()> {
    if period < MIN_ROTATION_PERIOD {
        return Err(Error::Rotation(format!(
            "rotation period {period} s is shorter than the minimum {MIN_ROTATION_PERIOD} s"
        )));
    }
    Ok(())
}

/// A ring version with its signing key parsed.
#[derive(Debug)]
pub struct LoadedRing {
    /// The ring version it came from.
    pub version: u64,
    /// The current key.
    pub signer: SigningKey,
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

    const DAY: i64 = 86_400;

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
    fn rotation_moves_each_key_one_step_and_keeps_times_honest() {
        let r1 = RingState::generate(1_000, 30 * DAY).unwrap();
        assert!(r1.previous.is_none());
        assert_eq!(r1.next.times.activates, 1_000 + 30 * DAY);
        let r2 = r1.rotate(2_000, 30 * DAY).unwrap();
        assert_eq!(r2.version, 2);
        assert_eq!(r2.previous.as_ref().unwrap().kid, r1.current.kid);
        assert_eq!(r2.previous.as_ref().unwrap().times.retires, 2_000);
        assert_eq!(r2.current.kid, r1.next.kid);
        assert_eq!(r2.current.times.activates, 2_000);
        assert_ne!(r2.next.kid, r1.next.kid);
        let r3 = r2.rotate(3_000, 30 * DAY).unwrap();
        let kids: Vec<_> = r3.keys().map(|k| k.kid.clone()).collect();
        assert!(!kids.contains(&r1.current.kid), "old previous is dropped");
        assert_eq!(kids.len(), 3);
        // Published expiry covers a full period after the key stops signing.
        let set = r3.public_set().unwrap();
        for k in &set.keys {
            assert_eq!(k.expiry, k.retires + 30 * DAY);
        }
    }

    #[test]
    fn emergency_drop_of_each_role() {
        let r = RingState::generate(0, DAY)
            .unwrap()
            .rotate(10, DAY)
            .unwrap();
        let prev = r.previous.clone().unwrap().kid;
        let dropped = r.drop_key(&prev, 20).unwrap();
        assert!(dropped.previous.is_none());
        assert_eq!(dropped.current, r.current);

        let cur = r.drop_key(&r.current.kid, 20).unwrap();
        assert!(cur.keys().all(|k| k.kid != r.current.kid));
        assert_eq!(cur.current.kid, r.next.kid);
        assert_eq!(cur.current.times.activates, 20);

        let next = r.drop_key(&r.next.kid, 20).unwrap();
        assert_eq!(next.current, r.current);
        assert_ne!(next.next.kid, r.next.kid);

        assert_eq!(
            r.drop_key("nope", 20).unwrap_err().code(),
            "rotation_refused"
        );
    }

    #[test]
    fn stored_ring_round_trips_and_detects_tampering() {
        let r = RingState::generate(0, DAY).unwrap();
        let json = r.to_json();
        assert_eq!(RingState::from_json(&json).unwrap(), r);
        let mut bad = r.clone();
        bad.current.kid = bad.next.kid.clone();
        assert_eq!(
            RingState::from_json(&bad.to_json()).unwrap_err().code(),
            "key_store_corrupt"
        );
        assert!(RingState::from_json(b"{\"version\":1}").is_err());
    }

    #[test]
    fn a_remembered_parse_never_vouches_for_other_bytes() {
        let r = RingState::generate(0, DAY).unwrap();
        let first = r.current.parse().unwrap();
        let again = r.current.parse().unwrap();
        assert!(
            Arc::ptr_eq(&first.pair, &again.pair),
            "the second parse is remembered"
        );
        assert_eq!(again.kid, r.current.kid);
        // The same key under another kid is still refused: the thumbprint check runs every time.
        let mut renamed = r.current.clone();
        renamed.kid = r.next.kid.clone();
        assert_eq!(renamed.parse().unwrap_err().code(), "key_store_corrupt");
        // Any change to the bytes misses and gets the full parse and checks.
        let mut flipped = r.current.clone();
        let last = flipped.pkcs8.0.len() - 1;
        flipped.pkcs8.0[last] ^= 1;
        assert_eq!(flipped.parse().unwrap_err().code(), "key_store_corrupt");
    }

    #[test]
    fn debug_never_shows_private_material() {
        let r = RingState::generate(0, DAY).unwrap();
        let b64 = STANDARD.encode(&r.current.pkcs8.0);
        let shown = format!("{r:?} {:?}", r.load().unwrap());
        assert!(!shown.contains(&b64[..40]));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn periods_shorter_than_token_lifetimes_are_refused() {
        assert!(RingState::generate(0, 3600).is_err());
    }
}
