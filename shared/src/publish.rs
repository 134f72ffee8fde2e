//! The published public key set and its three renderings: Omnichannel's multi-key array, a
//! single PEM block, and a standard JWKS.
//!
//! The set is rendered once per version into ready-to-serve bytes ([`PublishedDocs`]); serving
//! a request is a pointer copy.

use crate::keys::{KeySet, VerifyingKey, pem};
use crate::{Error, Result};
use aws_lc_rs::rsa::PublicKey;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Seconds the public documents may be cached (`Cache-Control: max-age`): a key signs only
/// after it has been published at least this long plus the key cache TTL.
pub const PUBLIC_DOCS_MAX_AGE: i64 = 300;

/// The public half of a ring key, as stored in the public key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// SubjectPublicKeyInfo DER.
    #[serde(with = "crate::keys::b64_std")]
    pub spki: Vec<u8>,
    /// Signs from (planned for `next`).
    pub activates: i64,
    /// Stops signing at (planned for `current` and `next`).
    pub retires: i64,
    /// When every token the key signed has expired (planned, for keys that still sign or wait).
    pub expiry: i64,
    /// When this key first appeared in a published set: rotation promotes a key only after
    /// caches have had time to see it. `None` in sets written before this was recorded.
    #[serde(default)]
    pub published: Option<i64>,
    /// When publication first showed another key signing in its place: rotation prunes a key
    /// only once every token it could have signed has expired after this.
    #[serde(default)]
    pub stopped: Option<i64>,
}

/// The public key set: what validate-token and public-keys read, and what rotation publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeySet {
    /// The ring version this set was published from.
    pub version: u64,
    /// The key that signs now (the single-PEM format shows only this one).
    pub current_kid: String,
    /// Every published key.
    pub keys: Vec<PublishedKey>,
    /// Kids revoked by an emergency, so that verifiers can say so instead of "unknown".
    #[serde(default)]
    pub revoked: Vec<String>,
}

impl PublicKeySet {
    /// The published entry for `kid`.
    pub fn key(&self, kid: &str) -> Option<&PublishedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// SHA-256 (hex) of the stored form: what caches compare (invariant 5 of [`crate::ring`]).
    pub fn digest(&self) -> String {
        crate::crypto::hex_digest(&self.to_json())
    }

    /// True when every key of `other` is published here.
    pub fn contains_all(&self, other: &PublicKeySet) -> bool {
        other
            .keys
            .iter()
            .all(|k| self.keys.iter().any(|mine| mine.kid == k.kid))
    }

    /// Parses a stored set.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let set: PublicKeySet =
            serde_json::from_slice(bytes).map_err(Error::unreadable("public key set"))?;
        if set.key(&set.current_kid).is_none() {
            return Err(Error::corrupt(
                "public key set",
                "current_kid is not among the keys",
            ));
        }
        Ok(set)
    }

    /// The stored form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses every key and renders the three documents.
    pub fn render(&self) -> Result<PublishedDocs> {
        let mut verifiers = Vec::with_capacity(self.keys.len());
        let mut multi = Vec::with_capacity(self.keys.len());
        let mut jwks = Vec::with_capacity(self.keys.len());
        let mut current_pem = None;
        for key in &self.keys {
            let public = PublicKey::from_der(&key.spki)
                .map_err(|e| Error::corrupt("public key set", format!("key {}: {e}", key.kid)))?;
            let n = public.modulus().big_endian_without_leading_zero().to_vec();
            let e = public.exponent().big_endian_without_leading_zero().to_vec();
            if crate::keys::thumbprint_of(&n, &e) != key.kid {
                return Err(Error::corrupt(
                    "public key set",
                    format!("kid {} does not match its key's thumbprint", key.kid),
                ));
            }
            let pem_text = pem("PUBLIC KEY", &key.spki);
            multi.push(json!({
                "kid": key.kid,
                "publicKey": STANDARD.encode(pem_text.as_bytes()),
                "expiry": key.expiry,
            }));
            jwks.push(json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key.kid,
                "n": URL_SAFE_NO_PAD.encode(&n),
                "e": URL_SAFE_NO_PAD.encode(&e),
            }));
            if key.kid == self.current_kid {
                current_pem = Some(pem_text);
            }
            verifiers.push(VerifyingKey::from_der(key.kid.clone(), &key.spki)?);
        }
        let current_pem = current_pem
            .ok_or_else(|| Error::corrupt("public key set", "current_kid is not among the keys"))?;
        Ok(PublishedDocs {
            version: self.version,
            multi_key: serde_json::to_vec(&multi).unwrap_or_default().into(),
            pem: current_pem.into_bytes().into(),
            jwks: serde_json::to_vec(&json!({ "keys": jwks }))
                .unwrap_or_default()
                .into(),
            keys: KeySet::new(verifiers).with_revoked(self.revoked.clone()),
        })
    }
}

/// A rendered key set: the three documents as bytes plus the parsed verifying keys.
#[derive(Debug)]
pub struct PublishedDocs {
    /// The set's version.
    pub version: u64,
    /// `[{"kid","publicKey":<base64 of PEM>,"expiry"}]`.
    pub multi_key: Bytes,
    /// The current key as one PEM block.
    pub pem: Bytes,
    /// `{"keys":[JWK...]}`.
    pub jwks: Bytes,
    /// Verifiers for every published key.
    pub keys: KeySet,
}

/// A consumer's reading of a Public key URL document (either format), as Omnichannel would
/// read it: used by the outside checks and the fuzzers.
pub fn parse_public_key_document(body: &[u8]) -> Result<KeySet> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::corrupt("public key document", "not UTF-8"))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
        let der = pem_body(trimmed)?;
        let public = PublicKey::from_der(&der)
            .map_err(|e| Error::corrupt("public key document", e.to_string()))?;
        let kid = crate::keys::thumbprint(&public);
        return Ok(KeySet::new(vec![VerifyingKey::from_der(kid, &der)?]));
    }
    #[derive(Deserialize)]
    struct Entry {
        kid: String,
        #[serde(rename = "publicKey")]
        public_key: String,
        #[allow(dead_code)]
        expiry: i64,
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(body).map_err(Error::unreadable("public key document"))?;
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(entries.len());
    for entry in entries {
        if keys.iter().any(|k| k.kid == entry.kid) {
            return Err(Error::corrupt(
                "public key document",
                format!("kid {} appears twice", entry.kid),
            ));
        }
        keys.push(VerifyingKey::from_der(
            entry.kid,
            &array_public_key_der(&entry.public_key)?,
        )?);
    }
    Ok(KeySet::new(keys))
}

/// The DER inside one `publicKey` of the multi-key array: the base64 of a `PUBLIC KEY` PEM
/// block's text.
pub fn array_public_key_der(public_key: &str) -> Result<Vec<u8>> {
    let pem_text = STANDARD
        .decode(public_key.as_bytes())
        .map_err(|e| Error::corrupt("public key document", e.to_string()))?;
    let pem_text = String::from_utf8(pem_text)
        .map_err(|_| Error::corrupt("public key document", "publicKey is not a PEM"))?;
    pem_body(&pem_text)
}

/// One entry of a multi-key array, each member judged on its own. Omnichannel skips an entry
/// it cannot use (a past `expiry`, a `publicKey` that is not base64 PEM) without a word, so a
/// diagnosis must name every bad entry, where [`parse_public_key_document`] may stop at the
/// first.
#[derive(Debug)]
pub struct ArrayEntry {
    /// `kid`, when it is a string.
    pub kid: Option<String>,
    /// `expiry` as given: the contract wants unix seconds, and a diagnosis must be able to say
    /// what else it found.
    pub expiry: Option<serde_json::Value>,
    /// The key, or why `publicKey` is not the base64 of a PEM RSA public key of at least 2048
    /// bits.
    pub key: Result<ArrayKey>,
}

/// A readable key of a multi-key array entry.
#[derive(Debug)]
pub struct ArrayKey {
    /// Modulus length in bits.
    pub bits: usize,
    /// RFC 7638 thumbprint: the same key rendered elsewhere (the JWKS) has the same one,
    /// whatever kid it is published under.
    pub thumbprint: String,
    /// The key, to verify with under the entry's kid.
    pub verifier: VerifyingKey,
}

/// Reads a multi-key array entry by entry (see [`ArrayEntry`]). Fails only when the body is
/// not a JSON array at all.
pub fn read_key_array(body: &[u8]) -> Result<Vec<ArrayEntry>> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(Error::unreadable("public key document"))?;
    Ok(entries
        .iter()
        .map(|entry| {
            let kid = entry["kid"].as_str().map(str::to_owned);
            let key = match entry["publicKey"].as_str() {
                Some(text) => array_key(kid.as_deref(), text),
                None => Err(Error::corrupt(
                    "public key document",
                    "publicKey is missing or not a string",
                )),
            };
            ArrayEntry {
                kid,
                expiry: entry.get("expiry").cloned(),
                key,
            }
        })
        .collect())
}

fn array_key(kid: Option<&str>, public_key: &str) -> Result<ArrayKey> {
    let der = array_public_key_der(public_key)?;
    let public = crate::keys::checked_public(&der, "public key document")?;
    let thumbprint = crate::keys::thumbprint(&public);
    Ok(ArrayKey {
        bits: public.modulus_len() * 8,
        verifier: VerifyingKey::from_der(kid.unwrap_or(&thumbprint), &der)?,
        thumbprint,
    })
}

/// Reads a JWKS (an identity provider's, or ours), keeping the RSA signing keys usable with
/// RS256. A key without `kid` is named by its thumbprint.
pub fn parse_jwks(body: &[u8]) -> Result<KeySet> {
    let keys = jwks_rsa_keys(body)?
        .into_iter()
        .map(|jwk| VerifyingKey::from_components(jwk.kid, &jwk.n, &jwk.e))
        .collect::<Result<Vec<_>>>()?;
    Ok(KeySet::new(keys))
}

/// The keys [`parse_jwks`] keeps, as (kid, RFC 7638 thumbprint): comparing a JWKS with another
/// rendering of the same set must compare the keys, since a kid is only a name.
pub fn jwks_thumbprints(body: &[u8]) -> Result<Vec<(String, String)>> {
    Ok(jwks_rsa_keys(body)?
        .into_iter()
        .map(|jwk| {
            let thumbprint = crate::keys::thumbprint_of(&jwk.n, &jwk.e);
            (jwk.kid, thumbprint)
        })
        .collect())
}

/// An RSA key of a JWKS: its kid and big-endian modulus and exponent.
struct RsaJwk {
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The JWKS's RSA keys usable with RS256 for signatures.
fn jwks_rsa_keys(body: &[u8]) -> Result<Vec<RsaJwk>> {
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        kid: Option<String>,
        n: Option<String>,
        e: Option<String>,
        alg: Option<String>,
        #[serde(rename = "use")]
        usage: Option<String>,
    }
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    let jwks: Jwks = serde_json::from_slice(body).map_err(Error::unreadable("JWKS"))?;
    let mut keys = Vec::new();
    for jwk in jwks.keys {
        let usable = jwk.kty == "RSA"
            && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
            && jwk.usage.as_deref().is_none_or(|u| u == "sig");
        let (Some(n), Some(e)) = (jwk.n.as_deref(), jwk.e.as_deref()) else {
            continue;
        };
        if !usable {
            continue;
        }
        let decode = |v: &str| {
            URL_SAFE_NO_PAD
                .decode(v)
                .map_err(|e| Error::corrupt("JWKS", e.to_string()))
        };
        let (n, e) = (decode(n)?, decode(e)?);
        let kid = jwk
            .kid
            .unwrap_or_else(|| crate::keys::thumbprint_of(&n, &e));
        keys.push(RsaJwk { kid, n, e });
    }
    Ok(keys)
}

fn pem_body(text: &str) -> Result<Vec<u8>> {
    let body = text
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or_else(|| Error::corrupt("public key document", "not a PUBLIC KEY PEM block"))?;
    let joined: String = body.split_whitespace().collect();
    STANDARD
        .decode(joined)
        .map_err(|e| Error::corrupt("public key document", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingState;

    #[test]
    fn renders_three_formats_that_a_consumer_can_read_back() {
        let ring = RingState::generate(100, 86_400).unwrap();
        let docs = ring.public_set().unwrap().render().unwrap();
        let multi: serde_json::Value = serde_json::from_slice(&docs.multi_key).unwrap();
        assert_eq!(multi.as_array().unwrap().len(), 2);
        assert_eq!(multi[0]["kid"], ring.current.kid);
        assert_eq!(multi[0]["expiry"], 100 + 2 * 86_400);
        let pem_text = String::from_utf8(
            STANDARD
                .decode(multi[0]["publicKey"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(pem_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(pem_text.as_bytes(), &docs.pem[..]);

        let read = parse_public_key_document(&docs.multi_key).unwrap();
        assert_eq!(read.len(), 2);
        assert!(read.find(&ring.next.kid).is_some());
        let single = parse_public_key_document(&docs.pem).unwrap();
        let from_jwks = parse_jwks(&docs.jwks).unwrap();
        assert!(from_jwks.find(&ring.current.kid).is_some());
        assert_eq!(single.single().unwrap().kid, ring.current.kid);

        let jwks: serde_json::Value = serde_json::from_slice(&docs.jwks).unwrap();
        assert_eq!(jwks["keys"][1]["kid"], ring.next.kid);
        assert_eq!(jwks["keys"][1]["use"], "sig");
        assert_eq!(jwks["keys"][1]["alg"], "RS256");
        assert_eq!(jwks["keys"][1]["e"], "AQAB");
    }

    /// A diagnosis reads past a bad entry, and matches the JWKS's keys by thumbprint.
    #[test]
    fn a_key_array_is_read_entry_by_entry_and_the_jwks_by_thumbprint() {
        let ring = RingState::generate(100, 86_400).unwrap();
        let docs = ring.public_set().unwrap().render().unwrap();
        let mut multi: serde_json::Value = serde_json::from_slice(&docs.multi_key).unwrap();
        multi[1]["publicKey"] = STANDARD.encode("not a PEM").into();
        multi[1]["expiry"] = "tomorrow".into();
        let entries = read_key_array(&serde_json::to_vec(&multi).unwrap()).unwrap();
        let first = entries[0].key.as_ref().unwrap();
        assert_eq!(entries[0].kid.as_deref(), Some(ring.current.kid.as_str()));
        assert_eq!(
            (first.bits, first.thumbprint.as_str()),
            (2048, ring.current.kid.as_str())
        );
        assert_eq!(entries[0].expiry, Some(json!(100 + 2 * 86_400)));
        assert_eq!(entries[1].kid.as_deref(), Some(ring.next.kid.as_str()));
        assert_eq!(entries[1].expiry, Some(json!("tomorrow")));
        let refused = entries[1].key.as_ref().unwrap_err();
        assert!(
            refused.to_string().contains("not a PUBLIC KEY PEM block"),
            "{refused}"
        );
        assert!(read_key_array(&docs.pem).is_err());

        let kids = |pairs: Vec<(String, String)>| pairs.into_iter().map(|(k, t)| (k == t, k));
        let listed: Vec<_> = kids(jwks_thumbprints(&docs.jwks).unwrap()).collect();
        assert_eq!(
            listed,
            [
                (true, ring.current.kid.clone()),
                (true, ring.next.kid.clone())
            ]
        );
    }

    #[test]
    fn a_set_whose_kid_lies_is_refused() {
        let ring = RingState::generate(0, 86_400).unwrap();
        let mut set = ring.public_set().unwrap();
        set.keys[1].kid = "forged".into();
        assert_eq!(set.render().unwrap_err().code(), "key_store_corrupt");
    }
}
