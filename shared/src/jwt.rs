//! Token validation that reports *every* reason a token would be refused, not just the first.
//!
//! The signature is checked by jsonwebtoken's verifier (`jsonwebtoken::crypto::verify`, with the
//! crate's RS256 provider). The diagnostic layer around it stays here, because
//! `jsonwebtoken::decode` stops at the first error and is lenient where Omnichannel's contract
//! needs strictness (duplicate members, non-integer times, the `lwicontexts` rules), while the
//! service's job is to name every reason at once. Only RS256 is ever accepted.

use crate::context::CustomContext;
use crate::json::{ObjectError, parse_unique_object};
use crate::keys::{KeySet, VerifyingKey};
use crate::{Problem, ProblemCode, Warning, WarningCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Tokens travel in an HTTP header; anything larger is refused before it is parsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest NumericDate accepted (9999-12-31T23:59:59Z).
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// What is checked beyond the signature, on top of Omnichannel's rules (`typ` JWT, required
/// `iss`/`sub`/`iat`/`exp`, `lwicontexts`).
#[derive(Debug, Clone)]
pub struct Validator {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Allowed clock difference in seconds for a future `nbf` or `iat`. Not for `exp`: the
    /// widget refuses a token once `exp` has passed, with no leeway, so a token that is valid
    /// here is one the widget takes.
    pub leeway: i64,
}

/// The outcome of validating one token.
#[derive(Debug, Default)]
pub struct Report {
    /// The decoded header, when it was a JSON object: a diagnosis names its `kid` even when no
    /// published key has it.
    pub header: Option<Map<String, Value>>,
    /// The decoded payload, when it was a JSON object.
    pub claims: Option<Map<String, Value>>,
    /// The kid of the published key the signature was checked with: the header's, or the only
    /// published key's when the header names none.
    pub kid: Option<String>,
    /// The parsed custom context (valid entries), when `lwicontexts` was present.
    pub context: Option<CustomContext>,
    /// Every reason the token is refused; empty means valid.
    pub problems: Vec<Problem>,
    /// What is not a refusal but may cost the chat: a token about to expire, a `sub` that is
    /// not a GUID, no `lwicontexts`.
    pub warnings: Vec<Warning>,
}

/// A token that expires sooner than this is warned about: the widget asks the page again for
/// a token once it has expired, and a chat that starts this close to `exp` will need that soon.
pub const EXPIRES_SOON_SECONDS: i64 = 60;

impl Report {
    /// True when no problem was found.
    pub fn is_active(&self) -> bool {
        self.problems.is_empty()
    }

    fn push(&mut self, code: ProblemCode, message: impl Into<String>) {
        self.problems.push(Problem::new(code, message));
    }

    fn warn(&mut self, code: WarningCode, message: impl Into<String>) {
        self.warnings.push(Problem::new(code, message));
    }

    /// The RFC 7662-style answer: `{"active":true, ...claims, "kid", "context"}` or
    /// `{"active":false,"problems":[...]}`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(self.is_active()));
        if self.is_active() {
            if let Some(claims) = &self.claims {
                out.extend(claims.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let Some(kid) = &self.kid {
                out.insert("kid".into(), Value::String(kid.clone()));
            }
            let context = self.context.clone().unwrap_or_default();
            out.insert(
                "context".into(),
                serde_json::to_value(context).unwrap_or_default(),
            );
        } else {
            out.insert(
                "problems".into(),
                serde_json::to_value(&self.problems).unwrap_or_default(),
            );
        }
        out.insert(
            "warnings".into(),
            serde_json::to_value(&self.warnings).unwrap_or_default(),
        );
        Value::Object(out)
    }
}

impl Validator {
    /// Validates a compact JWS against `keys` at time `now`.
    pub fn validate(&self, token: &str, keys: &KeySet, now: i64) -> Report {
        let mut report = Report::default();
        if token.len() > MAX_TOKEN_BYTES {
            report.push(
                ProblemCode::TokenTooLarge,
                format!(
                    "the token is {} bytes; at most {MAX_TOKEN_BYTES} are accepted",
                    token.len()
                ),
            );
            return report;
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            report.push(
                ProblemCode::Malformed,
                "a JWT has exactly three dot-separated segments",
            );
            return report;
        };
        let header = decode_object(&mut report, "header", h64);
        let payload = decode_object(&mut report, "payload", p64);
        // Decoded here as well as by jsonwebtoken, to tell bad encoding from a bad signature.
        let signature = match URL_SAFE_NO_PAD.decode(s64) {
            Ok(_) => Some(s64),
            Err(_) => {
                report.push(ProblemCode::BadEncoding, "the signature is not base64url");
                None
            }
        };
        if let Some(header) = &header {
            let key = self.check_header(&mut report, header, keys);
            if let (Some(key), Some(signature)) = (key, signature) {
                let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
                if !key.verify(signing_input, signature) {
                    report.push(
                        ProblemCode::BadSignature,
                        format!("the signature does not verify with key {}", key.kid),
                    );
                }
            }
        }
        report.header = header;
        if let Some(payload) = payload {
            self.check_claims(&mut report, &payload, now);
            report.claims = Some(payload);
        }
        report
    }

    fn check_header<'k>(
        &self,
        report: &mut Report,
        header: &Map<String, Value>,
        keys: &'k KeySet,
    ) -> Option<&'k VerifyingKey> {
        let alg_ok = match header.get("alg") {
            Some(Value::String(alg)) if alg == "RS256" => true,
            Some(Value::String(alg)) => {
                report.push(
                    ProblemCode::AlgNotAllowed,
                    format!("alg {:?} is not allowed; only RS256 is", truncate(alg)),
                );
                false
            }
            _ => {
                report.push(
                    ProblemCode::AlgNotAllowed,
                    "the header has no alg; only RS256 is allowed",
                );
                false
            }
        };
        match header.get("typ") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
            Some(_) => report.push(ProblemCode::UnsupportedTyp, "typ must be \"JWT\""),
        }
        if header.contains_key("crit") {
            report.push(
                ProblemCode::CritUnsupported,
                "the header lists critical extensions, which are not supported",
            );
        }
        let key = match header.get("kid") {
            Some(Value::String(kid)) => match keys.find(kid) {
                Some(key) => {
                    report.kid = Some(kid.clone());
                    Some(key)
                }
                None if keys.is_revoked(kid) => {
                    report.push(
                        ProblemCode::RevokedKid,
                        format!("kid {:?} was revoked", truncate(kid)),
                    );
                    None
                }
                None => {
                    report.push(
                        ProblemCode::UnknownKid,
                        format!("kid {:?} is not published", truncate(kid)),
                    );
                    None
                }
            },
            Some(_) => {
                report.push(ProblemCode::UnknownKid, "kid must be a string");
                None
            }
            None => match keys.single() {
                Some(key) => {
                    report.kid = Some(key.kid.clone());
                    Some(key)
                }
                None => {
                    report.push(
                        ProblemCode::MissingKid,
                        "the header has no kid, and several keys are published",
                    );
                    None
                }
            },
        };
        key.filter(|_| alg_ok)
    }

    fn check_claims(&self, report: &mut Report, claims: &Map<String, Value>, now: i64) {
        let leeway = self.leeway;
        match (claims.get("iss"), &self.issuer) {
            (None, _) => report.push(ProblemCode::MissingIss, "the iss claim is required"),
            (Some(Value::String(iss)), Some(expected)) if iss != expected => report.push(
                ProblemCode::WrongIss,
                format!(
                    "iss {:?} is not the expected issuer {expected:?}",
                    truncate(iss)
                ),
            ),
            (Some(Value::String(_)), _) => {}
            (Some(_), _) => report.push(ProblemCode::WrongIss, "iss must be a string"),
        }
        match claims.get("sub") {
            None => report.push(ProblemCode::MissingSub, "the sub claim is required"),
            Some(Value::String(sub)) => match crate::claims::check_subject(sub) {
                Err(p) => report.problems.push(p),
                Ok(()) if !crate::claims::is_guid(sub) => report.warn(
                    WarningCode::SubNotGuid,
                    "sub is not a GUID: Omnichannel links the conversation to a contact or account record by its GUID, and persistent chat needs sub to stay the same for the customer",
                ),
                Ok(()) => {}
            },
            Some(_) => report.push(ProblemCode::InvalidSubject, "sub must be a string"),
        }
        let iat = time_claim(report, claims, "iat", Some(ProblemCode::MissingIat));
        let exp = time_claim(report, claims, "exp", Some(ProblemCode::MissingExp));
        let nbf = time_claim(report, claims, "nbf", None);
        match exp {
            Some(exp) if exp <= now => {
                report.push(ProblemCode::Expired, format!("the token expired at {exp} (now {now})"))
            }
            Some(exp) if exp - now < EXPIRES_SOON_SECONDS => report.warn(
                WarningCode::ExpiresSoon,
                format!(
                    "the token expires in {} s: the widget will ask the page for a new token right after that",
                    exp - now
                ),
            ),
            _ => {}
        }
        if let Some(nbf) = nbf
            && nbf > now + leeway
        {
            report.push(
                ProblemCode::NotYetValid,
                format!("the token is not valid before {nbf} (now {now})"),
            );
        }
        if let Some(iat) = iat
            && iat > now + leeway
        {
            report.push(
                ProblemCode::IssuedInFuture,
                format!("iat {iat} is in the future (now {now})"),
            );
        }
        if let (Some(iat), Some(exp)) = (iat, exp)
            && exp <= iat
        {
            report.push(ProblemCode::ExpBeforeIat, "exp must be later than iat");
        }
        match claims.get("lwicontexts") {
            None => report.warn(
                WarningCode::NoLwicontexts,
                "there is no lwicontexts claim: the conversation gets no custom context (it travels only in the token for authenticated chat)",
            ),
            Some(Value::String(raw)) => {
                let (context, problems) = CustomContext::check_lwicontexts(raw);
                report.problems.extend(problems);
                report.context = Some(context);
            }
            Some(_) => report.push(
                ProblemCode::LwicontextsNotString,
                "lwicontexts must be a string holding serialized JSON, not an object",
            ),
        }
    }
}

/// A time claim's value; `missing` is the problem its absence is, `None` when it is optional.
fn time_claim(
    report: &mut Report,
    claims: &Map<String, Value>,
    name: &'static str,
    missing: Option<ProblemCode>,
) -> Option<i64> {
    match claims.get(name) {
        None => {
            if let Some(code) = missing {
                report.push(code, format!("the {name} claim is required"));
            }
            None
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(t) if (0..=MAX_NUMERIC_DATE).contains(&t) => Some(t),
            _ => {
                report.push(
                    ProblemCode::InvalidTime,
                    format!("{name} must be whole unix seconds between 0 and {MAX_NUMERIC_DATE}"),
                );
                None
            }
        },
        Some(_) => {
            report.push(
                ProblemCode::InvalidTime,
                format!("{name} must be a number of unix seconds"),
            );
            None
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn decode_object(
    report: &mut Report,
    part: &'static str,
    segment: &str,
) -> Option<Map<String, Value>> {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(segment) else {
        report.push(
            ProblemCode::BadEncoding,
            format!("the {part} is not base64url"),
        );
        return None;
    };
    match parse_unique_object(&bytes) {
        Ok(map) => Some(map),
        Err(ObjectError::Duplicate(key)) => {
            report.push(
                ProblemCode::DuplicateClaim,
                format!("the {part} repeats the member {:?}", truncate(&key)),
            );
            None
        }
        Err(_) => {
            let code = if part == "header" {
                ProblemCode::HeaderNotJson
            } else {
                ProblemCode::PayloadNotJson
            };
            report.push(code, format!("the {part} is not a UTF-8 JSON object"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{TokenPolicy, mint};
    use crate::ring::RingState;
    use crate::{ProblemCode as P, WarningCode as W};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    struct Fixture {
        ring: RingState,
        keys: KeySet,
        validator: Validator,
    }

    fn fixture() -> Fixture {
        let ring = RingState::generate(NOW - 100, 86_400).unwrap();
        let keys = ring.public_set().unwrap().render().unwrap().keys;
        Fixture {
            ring,
            keys,
            validator: Validator {
                issuer: Some("iss.example".into()),
                leeway: 60,
            },
        }
    }

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: "iss.example".into(),
            ttl: 900,
            skew: 30,
        }
    }

    fn forge(f: &Fixture, header: Value, payload: Value) -> String {
        let signer = f.ring.load().unwrap().signer;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let sig = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{sig}")
    }

    fn codes(r: &Report) -> Vec<P> {
        r.problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_minted_token_is_active_and_reports_its_context() {
        let f = fixture();
        let mut ctx = CustomContext::new();
        ctx.insert_json("Tier", &json!({"value": "gold", "isDisplayable": true}))
            .unwrap();
        let claims = policy().claims("contact-1", &ctx, NOW).unwrap();
        let t = mint(&f.ring.load().unwrap().signer, &claims).unwrap();
        let r = f.validator.validate(&t.token, &f.keys, NOW);
        assert!(r.is_active(), "{:?}", r.problems);
        let v = r.to_json();
        assert_eq!(v["sub"], "contact-1");
        assert_eq!(v["kid"], f.ring.current.kid);
        assert_eq!(v["context"]["Tier"]["value"], "gold");
    }

    #[test]
    fn every_problem_is_listed_not_just_the_first() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let t = forge(
            &f,
            json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            json!({"iss": "other", "exp": NOW - 1000, "nbf": NOW + 1000, "lwicontexts": {"a": 1}}),
        );
        let r = f.validator.validate(&t, &f.keys, NOW);
        let c = codes(&r);
        for expected in [
            P::WrongIss,
            P::MissingSub,
            P::MissingIat,
            P::Expired,
            P::NotYetValid,
            P::LwicontextsNotString,
        ] {
            assert!(c.contains(&expected), "{expected} missing from {c:?}");
        }
        assert!(!c.contains(&P::BadSignature));
    }

    #[test]
    fn header_attacks_are_refused_with_their_code() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let claims = json!({"iss": "iss.example", "sub": "s", "iat": NOW, "exp": NOW + 60});
        let cases = [
            (json!({"alg": "none", "kid": kid}), P::AlgNotAllowed),
            (json!({"alg": "HS256", "kid": kid}), P::AlgNotAllowed),
            (json!({"kid": kid}), P::AlgNotAllowed),
            (
                json!({"alg": "RS256", "kid": "../../etc/passwd"}),
                P::UnknownKid,
            ),
            (json!({"alg": "RS256"}), P::MissingKid),
            (json!({"alg": "RS256", "kid": 7}), P::UnknownKid),
            (
                json!({"alg": "RS256", "kid": kid, "crit": ["b64"]}),
                P::CritUnsupported,
            ),
            (
                json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}),
                P::UnsupportedTyp,
            ),
        ];
        for (header, code) in cases {
            let r = f
                .validator
                .validate(&forge(&f, header.clone(), claims.clone()), &f.keys, NOW);
            assert!(codes(&r).contains(&code), "{header}: {:?}", r.problems);
        }
    }

    #[test]
    fn shape_attacks_are_refused() {
        let f = fixture();
        let good = mint(
            &f.ring.load().unwrap().signer,
            &policy().claims("s", &CustomContext::new(), NOW).unwrap(),
        )
        .unwrap()
        .token;
        let (hp, sig) = good.rsplit_once('.').unwrap();
        let mut tampered_sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        tampered_sig[10] ^= 1;
        let cases = [
            ("a.b".to_owned(), P::Malformed),
            (format!("{good}.x"), P::Malformed),
            (format!("{good} "), P::BadEncoding),
            (
                format!("{hp}.{}", URL_SAFE_NO_PAD.encode(&tampered_sig)),
                P::BadSignature,
            ),
            ("x".repeat(MAX_TOKEN_BYTES + 1), P::TokenTooLarge),
            (
                format!("{}.e30.", URL_SAFE_NO_PAD.encode([0xff, 0xfe])),
                P::HeaderNotJson,
            ),
        ];
        for (token, code) in cases {
            let r = f.validator.validate(&token, &f.keys, NOW);
            assert!(codes(&r).contains(&code), "{code}: {:?}", r.problems);
        }
    }

    #[test]
    fn times_must_be_whole_bounded_numbers() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        for bad in [
            json!(1.5),
            json!("1800000000"),
            json!(1e300),
            json!(-1),
            json!(u64::MAX),
        ] {
            let t = forge(
                &f,
                json!({"alg": "RS256", "kid": kid}),
                json!({"iss": "iss.example", "sub": "s", "iat": NOW, "exp": bad}),
            );
            let r = f.validator.validate(&t, &f.keys, NOW);
            assert!(
                codes(&r).contains(&P::InvalidTime),
                "{bad}: {:?}",
                r.problems
            );
        }
    }

    /// The widget refuses a token once `exp < now`, whatever the leeway; leeway is only for a
    /// clock that runs behind the issuer's (a future `nbf` or `iat`).
    #[test]
    fn leeway_bounds_future_times_but_never_expiry() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let at = |exp: i64, iat: i64| {
            let t = forge(
                &f,
                json!({"alg": "RS256", "kid": kid}),
                json!({"iss": "iss.example", "sub": "s", "iat": iat, "exp": exp}),
            );
            codes(&f.validator.validate(&t, &f.keys, NOW))
        };
        assert!(at(NOW + 1, NOW - 900).is_empty());
        assert_eq!(at(NOW, NOW - 900), vec![P::Expired]);
        assert_eq!(at(NOW - 1, NOW - 900), vec![P::Expired]);
        assert_eq!(at(NOW - 59, NOW - 900), vec![P::Expired]);
        assert!(at(NOW + 900, NOW + 60).is_empty());
        assert_eq!(at(NOW + 900, NOW + 61), vec![P::IssuedInFuture]);
    }

    #[test]
    fn the_report_carries_codes_as_clients_see_them() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let t = forge(
            &f,
            json!({"alg": "RS256", "kid": kid}),
            json!({"iss": "iss.example", "sub": "s", "iat": NOW - 900, "exp": NOW}),
        );
        let v = f.validator.validate(&t, &f.keys, NOW).to_json();
        assert_eq!(
            v["problems"],
            json!([{"code": "expired", "message": format!("the token expired at {NOW} (now {NOW})")}])
        );
        assert_eq!(v["warnings"][0]["code"], "sub_not_guid");
    }

    #[test]
    fn warnings_are_not_problems() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let warned = |sub: &str, exp: i64, extra: Value| {
            let mut claims = json!({"iss": "iss.example", "sub": sub, "iat": NOW - 10, "exp": exp});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let t = forge(&f, json!({"alg": "RS256", "kid": kid}), claims);
            let r = f.validator.validate(&t, &f.keys, NOW);
            assert!(r.is_active(), "{:?}", r.problems);
            assert_eq!(r.to_json()["active"], true);
            r.warnings.iter().map(|w| w.code).collect::<Vec<_>>()
        };
        let guid = "3f2c8e4a-6b1d-4c9e-9a7f-0d5e8b2a1c44";
        let ctx = json!({"lwicontexts": "{\"a\":1}"});
        assert!(warned(guid, NOW + 60, ctx.clone()).is_empty());
        assert_eq!(warned(guid, NOW + 59, ctx.clone()), vec![W::ExpiresSoon]);
        assert_eq!(warned(guid, NOW + 1, ctx.clone()), vec![W::ExpiresSoon]);
        assert_eq!(
            warned("alice@contoso.com", NOW + 900, ctx.clone()),
            vec![W::SubNotGuid]
        );
        assert_eq!(
            warned(&guid.replace('-', ""), NOW + 900, ctx.clone()),
            vec![W::SubNotGuid]
        );
        assert_eq!(
            warned(&guid.to_uppercase(), NOW + 900, json!({})),
            vec![W::NoLwicontexts]
        );
    }

    #[test]
    fn duplicate_members_are_refused() {
        let f = fixture();
        let kid = f.ring.current.kid.clone();
        let payload = format!(
            r#"{{"iss":"iss.example","sub":"a","sub":"b","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": kid}).to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = f
            .ring
            .load()
            .unwrap()
            .signer
            .sign(input.as_bytes())
            .unwrap();
        let t = format!("{input}.{sig}");
        assert_eq!(
            codes(&f.validator.validate(&t, &f.keys, NOW)),
            vec![P::DuplicateClaim]
        );
    }
}
