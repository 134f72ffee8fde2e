//! A consumer reading a Public key URL: the multi-key JSON document or a PEM
//! (`parse_public_key_document`) and a JWKS (`parse_jwks`). Every input goes to both parsers;
//! neither may panic, whatever the bytes.
//!
//! Oracle beyond "no panic": any key set either parser returns is usable, i.e. looking keys up
//! and verifying a signature with each of them (which must fail: the fuzzer signs nothing)
//! does not panic.
#![no_main]

use chat_auth_shared::keys::KeySet;
use chat_auth_shared::publish::{parse_jwks, parse_public_key_document};
use libfuzzer_sys::fuzz_target;

fn exercise(keys: &KeySet) {
    let single = keys.single().map(|k| k.kid.clone());
    assert_eq!(single.is_some(), keys.len() == 1);
    assert_eq!(keys.is_empty(), keys.len() == 0);
    if let Some(kid) = single {
        let key = keys.find(&kid).expect("the single key is found by its kid");
        assert!(!key.verify(b"header.payload", &"A".repeat(342)));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = parse_public_key_document(data) {
        exercise(&keys);
    }
    if let Ok(keys) = parse_jwks(data) {
        exercise(&keys);
    }
});
