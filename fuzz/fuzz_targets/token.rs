//! Token parsing and validation, as the validate-token endpoint does it.
//!
//! Each input is used twice:
//! 1. as the compact token itself (lossy UTF-8), so the splitter, base64url decoding and
//!    everything after it see arbitrary text;
//! 2. when it contains a newline, as `header JSON \n payload JSON [\n signature bytes]`, which
//!    the harness base64url-encodes into a well-formed token. This lets the fuzzer work on the
//!    JSON and the claim rules directly instead of through base64. In the header, `KID0` and
//!    `KID1` are replaced by the real kids of the fixed key set so that signature verification
//!    is reached with arbitrary signatures.
//!
//! Oracles: no panic; `Report::to_json()` agrees with `is_active()`; and nothing the fuzzer
//! writes is ever accepted (it cannot hold a private key, so an active report would mean a
//! verification bypass).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_auth_shared::jwt::{Report, Validator};
use chat_auth_shared::keys::KeySet;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A fixed "now" so runs are reproducible (2025-01-01T00:00:00Z).
const NOW: i64 = 1_735_689_600;

struct Fixture {
    keys: KeySet,
    kids: [String; 2],
    validator: Validator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Key generation takes ~100 ms: once per process, never per input.
        let ring = chat_auth_shared::RingState::generate(NOW, 30 * 86400).expect("generate ring");
        let docs = ring
            .public_set()
            .expect("public set")
            .render()
            .expect("render");
        let validator = Validator {
            issuer: Some("x".into()),
            leeway: 30,
        };
        // Sanity check of the fixture itself: a genuinely signed token is accepted, so the
        // "never active" oracle below is meaningful rather than vacuous.
        let claims = serde_json::json!({
            "iss": "x", "sub": "s", "iat": NOW, "exp": NOW + 600,
            "lwicontexts": "{\"a\":\"b\"}",
        });
        let loaded = ring.load().expect("load ring");
        let token = chat_auth_shared::claims::encode(&loaded.signer, &claims).expect("sign");
        let report = validator.validate(&token, &docs.keys, NOW);
        assert!(
            report.is_active(),
            "fixture token refused: {:?}",
            report.problems
        );
        Fixture {
            keys: docs.keys,
            kids: [ring.current.kid.clone(), ring.next.kid.clone()],
            validator,
        }
    })
}

fn check(fx: &Fixture, token: &str) {
    let report: Report = fx.validator.validate(token, &fx.keys, NOW);
    let json = report.to_json();
    assert_eq!(
        json.get("active").and_then(|v| v.as_bool()),
        Some(report.is_active()),
        "to_json disagrees with is_active"
    );
    assert!(
        !report.is_active(),
        "a token not signed by the fixture's keys was accepted: {token:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let text = String::from_utf8_lossy(data);
    check(fx, &text);

    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return;
    };
    let signature = parts.next().unwrap_or_default();
    let header = replace_kids(header, &fx.kids);
    let mut token = URL_SAFE_NO_PAD.encode(&header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    check(fx, &token);
});

fn replace_kids(header: &[u8], kids: &[String; 2]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 90);
    let mut i = 0;
    while i < header.len() {
        if header[i..].starts_with(b"KID0") {
            out.extend_from_slice(kids[0].as_bytes());
            i += 4;
        } else if header[i..].starts_with(b"KID1") {
            out.extend_from_slice(kids[1].as_bytes());
            i += 4;
        } else {
            out.push(header[i]);
            i += 1;
        }
    }
    out
}
