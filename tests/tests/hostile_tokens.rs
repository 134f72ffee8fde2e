//! GIVEN a corpus of hostile tokens, WHEN validation reads them exactly as /validate does,
//! THEN each is refused with its specific problem code, and none panics.

use crate::common;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chat_auth_shared::claims::{TokenPolicy, mint};
use chat_auth_shared::jwt::{MAX_TOKEN_BYTES, Validator};
use chat_auth_shared::keys::{KeySet, SigningKey};
use chat_auth_shared::{CustomContext, RingState};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "contosohelp.com";
const DAY: i64 = 86_400;

struct Fixture {
    ring: RingState,
    keys: KeySet,
    signer: SigningKey,
    dropped: SigningKey,
    outsider: SigningKey,
    public_pem: String,
}

fn fixture() -> Fixture {
    let first = RingState::generate(NOW - 10 * DAY, DAY).unwrap();
    let dropped = first.current.parse().unwrap();
    // Two rotations: the first ring's current key is no longer published.
    let ring = common::rotated(&common::rotated(&first, NOW - 5 * DAY), NOW - DAY);
    assert!(ring.kids().all(|kid| kid != dropped.kid), "pruned");
    let docs = ring.public_set().unwrap().render().unwrap();
    Fixture {
        signer: ring.load().unwrap().signer,
        keys: docs.keys,
        public_pem: String::from_utf8(docs.pem.to_vec()).unwrap(),
        outsider: RingState::generate(NOW, DAY)
            .unwrap()
            .load()
            .unwrap()
            .signer,
        dropped,
        ring,
    }
}

fn b64(v: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "87b4d06c-abc2-e811-a9b0-000d3a10e09e", "iat": NOW - 30,
           "nbf": NOW - 30, "exp": NOW + 900, "jti": "j"})
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Signs raw header and payload text with an RSA key.
fn rs_raw(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{sig}")
}

fn hs(secret: &[u8], alg: &str, kid: &str, payload: &Value) -> String {
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let input = format!(
        "{}.{}",
        b64(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string()),
        b64(payload.to_string())
    );
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn lwi(value: Value) -> Value {
    with(json!({"lwicontexts": value}))
}

#[test]
fn every_hostile_token_is_refused_with_its_code() {
    let f = fixture();
    let kid = f.ring.current.kid.clone();
    let rs = |header: Value, payload: Value| {
        rs_raw(&f.signer, &header.to_string(), &payload.to_string())
    };
    let good_header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let ok = |payload: Value| rs(good_header.clone(), payload);
    let good = mint(
        &f.signer,
        &TokenPolicy {
            issuer: ISSUER.into(),
            ttl: 900,
            skew: 30,
        }
        .claims("contact", &CustomContext::new(), NOW)
        .unwrap(),
    )
    .unwrap()
    .token;
    let (good_hp, good_sig) = good.rsplit_once('.').unwrap();
    let (good_h, good_p) = good_hp.split_once('.').unwrap();
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("v{i}"), json!(i))).collect();
    let pem_secret = f.public_pem.as_bytes();

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none"}).to_string()),
                b64(claims().to_string())
            ),
            "alg_not_allowed",
        ),
        (
            "alg none with a signature",
            rs(json!({"alg": "none", "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "alg NONE upper case",
            rs(json!({"alg": "NONE", "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "HS256 keyed with the public PEM",
            hs(pem_secret, "HS256", &kid, &claims()),
            "alg_not_allowed",
        ),
        (
            "HS384 keyed with the public PEM",
            hs(pem_secret, "HS384", &kid, &claims()),
            "alg_not_allowed",
        ),
        (
            "HS512 keyed with the public PEM",
            hs(pem_secret, "HS512", &kid, &claims()),
            "alg_not_allowed",
        ),
        (
            "RS512 header",
            rs(json!({"alg": "RS512", "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "PS256 header",
            rs(json!({"alg": "PS256", "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "ES256 header",
            rs(json!({"alg": "ES256", "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "alg missing",
            rs(json!({"kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "alg not a string",
            rs(json!({"alg": 256, "kid": kid}), claims()),
            "alg_not_allowed",
        ),
        (
            "unknown kid",
            rs(json!({"alg": "RS256", "kid": "k1"}), claims()),
            "unknown_kid",
        ),
        (
            "kid with a path",
            rs(
                json!({"alg": "RS256", "kid": "../../../../etc/passwd"}),
                claims(),
            ),
            "unknown_kid",
        ),
        (
            "kid with SQL",
            rs(json!({"alg": "RS256", "kid": "' OR '1'='1'; --"}), claims()),
            "unknown_kid",
        ),
        (
            "kid not a string",
            rs(json!({"alg": "RS256", "kid": {"$ne": null}}), claims()),
            "unknown_kid",
        ),
        (
            "missing kid, several keys published",
            rs(json!({"alg": "RS256"}), claims()),
            "missing_kid",
        ),
        (
            "tampered payload",
            format!(
                "{good_h}.{}.{good_sig}",
                b64(with(json!({"sub": "someone-else"})).to_string())
            ),
            "bad_signature",
        ),
        (
            "tampered header",
            format!(
                "{}.{good_p}.{good_sig}",
                b64(json!({"alg": "RS256", "kid": kid, "typ": "jwt"}).to_string())
            ),
            "bad_signature",
        ),
        (
            "truncated signature",
            format!(
                "{good_hp}.{}",
                b64(&URL_SAFE_NO_PAD.decode(good_sig).unwrap()[..250])
            ),
            "bad_signature",
        ),
        (
            "signature of another key under our kid",
            rs_raw(&f.outsider, &good_header.to_string(), &claims().to_string()),
            "bad_signature",
        ),
        (
            "signed by a dropped key",
            rs_raw(
                &f.dropped,
                &json!({"alg": "RS256", "kid": f.dropped.kid}).to_string(),
                &claims().to_string(),
            ),
            "unknown_kid",
        ),
        (
            "jku and jwk headers are ignored",
            rs_raw(
                &f.outsider,
                &json!({"alg": "RS256", "kid": kid, "jku": "https://evil.example/jwks"})
                    .to_string(),
                &claims().to_string(),
            ),
            "bad_signature",
        ),
        (
            "expired beyond leeway",
            ok(with(json!({"exp": NOW - 31}))),
            "expired",
        ),
        // The widget refuses a token once exp < now, with no leeway: so does /validate.
        (
            "expired a second ago, within leeway",
            ok(with(json!({"exp": NOW - 1}))),
            "expired",
        ),
        ("expiring now", ok(with(json!({"exp": NOW}))), "expired"),
        (
            "nbf in the future",
            ok(with(json!({"nbf": NOW + 600}))),
            "not_yet_valid",
        ),
        (
            "iat in the future",
            ok(with(json!({"iat": NOW + 600}))),
            "issued_in_future",
        ),
        (
            "exp before iat",
            ok(with(json!({"iat": NOW + 20, "nbf": null, "exp": NOW + 10}))),
            "exp_before_iat",
        ),
        ("missing iss", ok(with(json!({"iss": null}))), "missing_iss"),
        (
            "wrong iss",
            ok(with(json!({"iss": "evil.example"}))),
            "wrong_iss",
        ),
        (
            "iss not a string",
            ok(with(json!({"iss": ["contosohelp.com"]}))),
            "wrong_iss",
        ),
        ("missing sub", ok(with(json!({"sub": null}))), "missing_sub"),
        ("empty sub", ok(with(json!({"sub": ""}))), "invalid_subject"),
        (
            "sub not a string",
            ok(with(json!({"sub": 42}))),
            "invalid_subject",
        ),
        ("missing exp", ok(with(json!({"exp": null}))), "missing_exp"),
        ("missing iat", ok(with(json!({"iat": null}))), "missing_iat"),
        (
            "exp as a string",
            ok(with(json!({"exp": (NOW + 900).to_string()}))),
            "invalid_time",
        ),
        (
            "exp as a float",
            ok(with(json!({"exp": 1.8e9 + 0.5}))),
            "invalid_time",
        ),
        ("exp huge", ok(with(json!({"exp": 1e30}))), "invalid_time"),
        (
            "exp beyond i64",
            ok(with(json!({"exp": u64::MAX}))),
            "invalid_time",
        ),
        ("iat negative", ok(with(json!({"iat": -1}))), "invalid_time"),
        (
            "lwicontexts as an object",
            ok(lwi(json!({"a": "b"}))),
            "lwicontexts_not_string",
        ),
        (
            "lwicontexts invalid JSON",
            ok(lwi(json!("{\"a\": "))),
            "context_invalid_json",
        ),
        (
            "lwicontexts an array",
            ok(lwi(json!("[1,2]"))),
            "context_not_object",
        ),
        (
            "lwicontexts nested value",
            ok(lwi(json!(r#"{"a": {"b": 1}}"#))),
            "context_value_not_primitive",
        ),
        (
            "lwicontexts null value",
            ok(lwi(json!(r#"{"a": null}"#))),
            "context_value_not_primitive",
        ),
        (
            "lwicontexts 101 variables",
            ok(lwi(json!(Value::Object(many.clone()).to_string()))),
            "context_too_many_variables",
        ),
        (
            "lwicontexts value of 4001 characters",
            ok(lwi(json!(json!({"a": "x".repeat(4001)}).to_string()))),
            "context_value_too_long",
        ),
        (
            "lwicontexts name of 101 characters",
            ok(lwi(json!(json!({"n".repeat(101): 1}).to_string()))),
            "context_name_too_long",
        ),
        (
            "lwicontexts empty name",
            ok(lwi(json!(r#"{"": 1}"#))),
            "context_name_empty",
        ),
        (
            "lwicontexts duplicate keys",
            ok(lwi(json!(r#"{"a": 1, "a": 2}"#))),
            "context_duplicate_key",
        ),
        (
            "duplicate claims",
            rs_raw(
                &f.signer,
                &good_header.to_string(),
                &format!(
                    r#"{{"iss":"{ISSUER}","sub":"a","sub":"b","iat":{NOW},"exp":{}}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_claim",
        ),
        (
            "duplicate header members",
            rs_raw(
                &f.signer,
                &format!(r#"{{"alg":"RS256","alg":"none","kid":"{kid}"}}"#),
                &claims().to_string(),
            ),
            "duplicate_claim",
        ),
        (
            "crit header",
            rs(
                json!({"alg": "RS256", "kid": kid, "crit": ["exp"]}),
                claims(),
            ),
            "crit_unsupported",
        ),
        (
            "typ not JWT",
            rs(
                json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}),
                claims(),
            ),
            "unsupported_typ",
        ),
        (
            "oversize token",
            format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES)),
            "token_too_large",
        ),
        ("two segments", good_hp.to_owned(), "malformed"),
        (
            "four segments (trailing data)",
            format!("{good}.AAAA"),
            "malformed",
        ),
        ("empty string", String::new(), "malformed"),
        ("trailing whitespace", format!("{good}\n"), "bad_encoding"),
        (
            "bad base64url characters",
            format!("@@@.{good_p}.{good_sig}"),
            "bad_encoding",
        ),
        (
            "padded base64",
            format!("{good_h}=.{good_p}.{good_sig}"),
            "bad_encoding",
        ),
        (
            "standard base64 alphabet",
            format!(
                "{}.{good_p}.{good_sig}",
                STANDARD.encode([0xfbu8, 0xff, 0xbf])
            ),
            "bad_encoding",
        ),
        (
            "non-UTF-8 header",
            format!("{}.{good_p}.{good_sig}", b64([0xc3u8, 0x28, 0xa0, 0xa1])),
            "header_not_json",
        ),
        (
            "header is an array",
            rs_raw(&f.signer, "[\"RS256\"]", &claims().to_string()),
            "header_not_json",
        ),
        (
            "payload is not JSON",
            rs_raw(&f.signer, &good_header.to_string(), "sub=admin"),
            "payload_not_json",
        ),
        (
            "payload nested 2000 deep",
            rs_raw(
                &f.signer,
                &good_header.to_string(),
                &format!("{}{}", "[".repeat(2_000), "]".repeat(2_000)),
            ),
            "payload_not_json",
        ),
    ];
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let validator = Validator {
        issuer: Some(ISSUER.into()),
        leeway: 30,
    };
    let mut refused = 0;
    for (name, token, code) in &cases {
        let report = validator.validate(token, &f.keys, NOW);
        let codes: Vec<&str> = report.problems.iter().map(|p| p.code.as_str()).collect();
        assert!(!report.is_active(), "{name}: accepted");
        assert!(
            codes.contains(code),
            "{name}: expected {code}, got {codes:?}"
        );
        assert_eq!(report.to_json()["active"], false, "{name}");
        refused += 1;
    }
    // The control: the unmodified token is accepted.
    assert!(validator.validate(&good, &f.keys, NOW).is_active());
    eprintln!("hostile tokens refused with their code: {refused}");
}
