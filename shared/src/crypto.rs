//! The process-wide `jsonwebtoken` crypto provider: RS256 on keys parsed once.
//!
//! jsonwebtoken's stock aws-lc backend parses the key for every operation. It re-reads the
//! private key DER on every signature, and aws-lc's consistency checks make that about 0.3 ms,
//! more than half an RS256 signature. The public key is re-read on every verification. This
//! provider signs and verifies RS256 with keys parsed once, remembered by their bytes, and hands
//! every other algorithm to the stock backend (the upstream identity check needs ES, PS and
//! EdDSA). Identical bytes always parse to the same key, so a remembered key is exactly what a
//! fresh parse would give.

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, aws_lc};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use std::sync::{Arc, LazyLock, Mutex};

/// How many parsed public keys are remembered: the published set holds up to four, and an
/// upstream identity provider's JWKS a few more.
const PARSED_PUBLIC_KEYS: usize = 16;

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Installs this provider as jsonwebtoken's process default; every path of this crate that
/// signs or verifies calls it first, and so must any other user of jsonwebtoken in a process
/// that signs with this crate. Idempotent. If some other provider got installed first, the
/// stock backend's rules apply (still correct, only slower), which [`installed`] reports.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

/// True when this provider is the process default (a test and the benchmarks check it).
pub fn installed() -> bool {
    install();
    // A second install fails and returns the one in place.
    match PROVIDER.install_default() {
        Err(current) => std::ptr::eq(current, &*PROVIDER),
        Ok(()) => true,
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::RS256 {
        return (aws_lc::DEFAULT_PROVIDER.signer_factory)(algorithm, key);
    }
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    // The EncodingKey holds PKCS#1 (RSAPrivateKey), as jsonwebtoken's stock backend expects.
    let pair = remembered(key.as_bytes(), KeyPair::from_der)
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(Rs256Signer(pair)))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::RS256 {
        return (aws_lc::DEFAULT_PROVIDER.verifier_factory)(algorithm, key);
    }
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(Rs256Verifier(parse_public(key)?)))
}

struct Rs256Signer(Arc<KeyPair>);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &sig::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(SignatureError::from_source)?;
        Ok(signature)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Rs256Verifier(Arc<ParsedPublicKey>);

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        self.0
            .verify_sig(message, signature)
            .map_err(SignatureError::from_source)
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// How many parsed private keys are remembered: a ring holds three, a rotation briefly sees
/// four, and the development identity provider has one; each is held under two encodings.
const PARSED_KEYS: usize = 16;

/// Private keys this process has parsed, by SHA-256 of the bytes they were parsed from: the
/// stored PKCS#8, and the PKCS#1 form jsonwebtoken's `EncodingKey` holds.
///
/// Parsing an RSA private key runs aws-lc's consistency checks (about 0.3 ms, more than half an
/// RS256 signature), and the same key is parsed again and again: every read of a stored ring
/// validates its signing key (`from_json`) and then prepares it (`load`), once per cache
/// refresh, publishing parses every key of the ring, and jsonwebtoken hands the signer only
/// bytes. Identical bytes parse to the same validated key, so a hit returns it; bytes that
/// differ in any way miss and are parsed and checked in full. Only keys of rings this process
/// loaded are held, and at most [`PARSED_KEYS`] of them.
static PARSED: Mutex<Vec<([u8; 32], Arc<KeyPair>)>> = Mutex::new(Vec::new());

type Parse = fn(&[u8]) -> std::result::Result<KeyPair, aws_lc_rs::error::KeyRejected>;

/// The parsed key behind PKCS#8 bytes.
pub(crate) fn parse_pkcs8(
    pkcs8: &[u8],
) -> std::result::Result<Arc<KeyPair>, aws_lc_rs::error::KeyRejected> {
    remembered(pkcs8, KeyPair::from_pkcs8)
}

/// Files `pair` under another encoding of the same key, so that the signer, which sees only the
/// `EncodingKey`'s bytes, finds the key already parsed.
pub(crate) fn remember_as(bytes: &[u8], pair: &Arc<KeyPair>) {
    let mut known = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    file(&mut known, sha256(bytes), pair, PARSED_KEYS);
}

/// Adds `value` under `id` unless it is there, dropping the oldest entry beyond `bound`. Not a
/// cache crate (quick_cache, moka): sixteen entries scanned under one mutex leave it nothing to
/// improve, and the third memo (`cli/src/upstream.rs`) evicts by expiry, which quick_cache
/// cannot, so one crate for all three is not on offer.
fn file<K: PartialEq, V>(known: &mut Vec<(K, Arc<V>)>, id: K, value: &Arc<V>, bound: usize) {
    if known.iter().any(|(k, _)| *k == id) {
        return;
    }
    if known.len() >= bound {
        known.remove(0);
    }
    known.push((id, value.clone()));
}

/// SHA-256 of `bytes`: the identity of a parsed key here, of a verified token in the hosts.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut id = [0u8; 32];
    id.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    id
}

fn remembered(
    bytes: &[u8],
    parse: Parse,
) -> std::result::Result<Arc<KeyPair>, aws_lc_rs::error::KeyRejected> {
    let id = sha256(bytes);
    let parsed = || PARSED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pair)) = parsed().iter().find(|(known, _)| *known == id) {
        return Ok(pair.clone());
    }
    let pair = Arc::new(parse(bytes)?);
    file(&mut parsed(), id, &pair, PARSED_KEYS);
    Ok(pair)
}

/// Public keys parsed so far, by their bytes (DER, or `n` followed by `e`), newest last.
static PARSED_PUBLIC: Mutex<Vec<(Vec<u8>, Arc<ParsedPublicKey>)>> = Mutex::new(Vec::new());

/// The parsed RS256 public key behind `key`, remembered by its bytes.
pub(crate) fn parse_public(key: &DecodingKey) -> Result<Arc<ParsedPublicKey>> {
    let kind = key.kind();
    let id: Vec<u8> = match kind {
        DecodingKeyKind::SecretOrDer(der) => der.clone(),
        DecodingKeyKind::RsaModulusExponent { n, e } => [n.as_slice(), e.as_slice()].concat(),
    };
    let known = || PARSED_PUBLIC.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, key)) = known().iter().find(|(bytes, _)| *bytes == id) {
        return Ok(key.clone());
    }
    let parsed = match kind {
        DecodingKeyKind::SecretOrDer(der) => {
            ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der)
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            RsaPublicKeyComponents { n, e }.to_parsed_public_key(&sig::RSA_PKCS1_2048_8192_SHA256)
        }
    }
    .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    let parsed = Arc::new(parsed);
    file(&mut known(), id, &parsed, PARSED_PUBLIC_KEYS);
    Ok(parsed)
}

/// SHA-256 of `bytes` as lowercase hex.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyTimes, StoredKey};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn rs256_goes_through_this_provider_and_the_stock_backend_agrees() {
        let stored = StoredKey::generate(KeyTimes {
            created: 0,
            activates: 0,
            retires: 10,
        })
        .unwrap();
        let key = stored.parse().unwrap();
        // Before any signature, the signer's lookup finds the key that parse() checked, under
        // the EncodingKey's bytes: signing never parses it again.
        remembered(key.local().unwrap().as_bytes(), |_| {
            panic!("parsed a second time")
        })
        .unwrap();
        let token = crate::claims::encode(&key, &serde_json::json!({"sub": "s"})).unwrap();
        // The same EncodingKey signs under the stock backend too, in case another provider
        // was installed before this one.
        let stock =
            (aws_lc::DEFAULT_PROVIDER.signer_factory)(&Algorithm::RS256, key.local().unwrap());
        assert!(stock.unwrap().try_sign(b"message").is_ok());
        assert!(installed(), "the crate's provider is the process default");
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let public = DecodingKey::from_rsa_der(&stored.spki().unwrap());
        // The stock backend, which parses the key itself, verifies what this provider signed.
        let stock = (aws_lc::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::RS256, &public);
        assert!(stock.unwrap().verify(input.as_bytes(), &sig).is_ok());
        let ours = verifier(&Algorithm::RS256, &public).unwrap();
        assert!(ours.verify(input.as_bytes(), &sig).is_ok());
        assert!(ours.verify(b"another message", &sig).is_err());
    }
}
