use serde::Serialize;

/// Why a token, a custom context, a key document or an operation was refused.
///
/// One enum for the domain crate, one variant per cause. It knows nothing of HTTP: the host
/// crate maps each cause to a status once (`chat_auth_host::Error`). [`Error::code`] is the
/// stable, machine-readable code clients see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration variable is missing or invalid; the process must not start.
    #[error("{var}: {reason}")]
    Config {
        /// The environment variable (or flag) at fault.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The custom context or subject breaks one of Omnichannel's rules.
    #[error("{0}")]
    Invalid(Problem),
    /// A client sent a context key that is not on the allow-list
    /// (`CHAT_AUTH_CLIENT_CONTEXT_KEYS`): refused by name, so that a misconfigured page fails
    /// loudly instead of silently losing context.
    #[error("context key {0:?} may not be set by the client")]
    ContextKeyNotAllowed(String),
    /// A development sign-in asked for a claim that only the identity provider may set.
    #[error("claim {0:?} is set by the identity provider")]
    ReservedClaim(String),
    /// The caller's verified identity lacks the claim configured as the token's subject.
    #[error("the verified identity has no {claim:?} claim to use as the subject")]
    NoSubjectClaim {
        /// `CHAT_AUTH_SUBJECT_CLAIM`.
        claim: String,
    },
    /// The key store could not be reached or read; the service fails closed.
    #[error("key store unavailable")]
    StoreUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The key store holds no ring or key set yet.
    #[error("no {0} in the key store")]
    NotProvisioned(&'static str),
    /// A stored ring or key set cannot be used (corrupt JSON, bad key, thumbprint mismatch).
    #[error("stored {what} is invalid: {reason}")]
    CorruptKeys {
        /// Which document.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored ring, key set or key document is not the JSON it must be.
    #[error("stored {what} does not parse")]
    UnreadableKeys {
        /// Which document.
        what: &'static str,
        /// The parser's error (line, column, what was expected).
        #[source]
        source: serde_json::Error,
    },
    /// A concurrent writer changed the ring first; the caller should reload and retry.
    #[error("the key ring changed concurrently: {0}; reload and retry")]
    Conflict(String),
    /// A rotation request cannot be honoured (unknown kid, a rotation id that is not pending).
    #[error("{0}")]
    Rotation(String),
    /// A cryptographic primitive failed (key generation, signing); aws-lc says no more than
    /// that, so there is no source to keep.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The service that holds the signing key (AWS KMS) refused or failed a signature: the
    /// service fails closed, as it does when the key store is unreachable.
    #[error("the signing service {}", if *throttled { "is throttling requests" } else { "failed" })]
    KeyService {
        /// The service's request quota is exhausted (KMS's shared RSA quota): retry later.
        throttled: bool,
        /// The service's own error, for the logs only.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "configuration_error",
            Error::Invalid(problem) => problem.code.as_str(),
            Error::ContextKeyNotAllowed(_) => "context_key_not_allowed",
            Error::ReservedClaim(_) => "reserved_claim",
            Error::NoSubjectClaim { .. } => "unauthenticated",
            Error::StoreUnavailable(_) => "key_store_unavailable",
            Error::NotProvisioned(_) => "keys_not_provisioned",
            Error::CorruptKeys { .. } | Error::UnreadableKeys { .. } => "key_store_corrupt",
            Error::Conflict(_) => "conflict",
            Error::Rotation(_) => "rotation_refused",
            Error::Crypto(_) => "crypto_failure",
            Error::KeyService {
                throttled: true, ..
            } => "kms_throttled",
            Error::KeyService { .. } => "kms_unavailable",
            Error::Io { .. } => "internal_error",
        }
    }

    /// The store or the keys are at fault, not the request: the service is unavailable
    /// rather than broken, and the details stay in the logs.
    pub fn is_key_store(&self) -> bool {
        matches!(
            self,
            Error::StoreUnavailable(_)
                | Error::NotProvisioned(_)
                | Error::CorruptKeys { .. }
                | Error::UnreadableKeys { .. }
                | Error::KeyService { .. }
        )
    }

    pub(crate) fn unreadable(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Error::UnreadableKeys { what, source }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Error::CorruptKeys {
            what,
            reason: reason.into(),
        }
    }
}

/// An error and its causes on one line, each cause once (some messages already end with
/// their source's): for operators and logs, never for clients.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line = format!("{line}: {text}");
        }
        source = cause.source();
    }
    line
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Invalid(problem)
    }
}

/// One reason a token or a custom context would be refused, or (with a [`WarningCode`]) one
/// thing that would not be refused but may cost the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem<C = ProblemCode> {
    /// Stable, machine-readable code: what a client matches on, whatever the message says.
    pub code: C,
    /// Human-readable explanation naming the claim or context key at fault.
    pub message: String,
}

/// A finding that does not make a token inactive.
pub type Warning = Problem<WarningCode>;

impl<C> Problem<C> {
    /// A problem with `code` and `message`.
    pub fn new(code: C, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
        }
    }
}

impl<C> std::fmt::Display for Problem<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Declares a code enum from one list of `Variant = "wire_name"`: the enum, [`Self::ALL`] and
/// [`Self::as_str`] (which `Serialize` and `Display` use) cannot drift apart, and the documents
/// that list the codes are checked against `ALL`.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),*];

            /// The code as clients see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes! {
    /// Why a token would be refused: every code `/validate` can report in `problems`. A token
    /// with any of them is one Omnichannel (or the widget, before it) would not accept, so the
    /// chat would not start authenticated. The custom-context and subject codes are also the
    /// error codes of `/token` and `/issue` when a context or subject breaks the same rule.
    pub enum ProblemCode {
        /// Larger than 8 KiB: the token travels in an HTTP header (`AuthenticatedUserToken`),
        /// and servers refuse headers much larger than a few KiB.
        TokenTooLarge = "token_too_large",
        /// Not three dot-separated segments: the widget itself refuses it before sending it.
        Malformed = "malformed",
        /// A segment is not base64url: the widget cannot decode the payload, Omnichannel
        /// cannot decode the signature.
        BadEncoding = "bad_encoding",
        /// The header is not a JSON object, so no algorithm or key can be read from it.
        HeaderNotJson = "header_not_json",
        /// The payload is not a JSON object: the widget refuses it before sending it.
        PayloadNotJson = "payload_not_json",
        /// A member appears twice: parsers disagree on which one counts, so Omnichannel may
        /// read another claim than the one checked here.
        DuplicateClaim = "duplicate_claim",
        /// `alg` is not RS256, the only algorithm Omnichannel verifies (this includes `none`
        /// and the HMAC algorithms).
        AlgNotAllowed = "alg_not_allowed",
        /// `typ` is present and not `JWT`, the only type Omnichannel's contract names.
        UnsupportedTyp = "unsupported_typ",
        /// The header lists critical extensions: a verifier must refuse those it does not
        /// understand (RFC 7515), and Omnichannel's contract defines none.
        CritUnsupported = "crit_unsupported",
        /// No `kid` while several keys are published: Omnichannel needs the kid to pick a key
        /// from the multi-key document.
        MissingKid = "missing_kid",
        /// The `kid` names no published key, so Omnichannel has nothing to verify with.
        UnknownKid = "unknown_kid",
        /// The `kid` names a key that was revoked: it is no longer published, so Omnichannel
        /// cannot verify with it either.
        RevokedKid = "revoked_kid",
        /// The signature does not verify with the published key.
        BadSignature = "bad_signature",
        /// No `iss`: Omnichannel requires it.
        MissingIss = "missing_iss",
        /// `iss` is not this service's issuer (or not a string).
        WrongIss = "wrong_iss",
        /// No `sub`: Omnichannel requires it and links the conversation to it.
        MissingSub = "missing_sub",
        /// `sub` is not 1 to 256 printable characters (or not a string): Omnichannel links
        /// the conversation to it.
        InvalidSubject = "invalid_subject",
        /// No `iat`: Omnichannel requires it.
        MissingIat = "missing_iat",
        /// No `exp`: Omnichannel requires it.
        MissingExp = "missing_exp",
        /// A time claim is not whole unix seconds within NumericDate's range.
        InvalidTime = "invalid_time",
        /// `exp` has passed: the widget refuses the token itself, with no leeway.
        Expired = "expired",
        /// `nbf` is later than now plus the leeway.
        NotYetValid = "not_yet_valid",
        /// `iat` is later than now plus the leeway.
        IssuedInFuture = "issued_in_future",
        /// `exp` is not later than `iat`: the token was never valid.
        ExpBeforeIat = "exp_before_iat",
        /// `lwicontexts` is not a string: Omnichannel reads the custom context only as a
        /// string of serialized JSON.
        LwicontextsNotString = "lwicontexts_not_string",
        /// `lwicontexts` is not valid JSON.
        ContextInvalidJson = "context_invalid_json",
        /// `lwicontexts` is JSON but not an object of context variables.
        ContextNotObject = "context_not_object",
        /// A context variable appears twice in `lwicontexts`.
        ContextDuplicateKey = "context_duplicate_key",
        /// A context value is not a primitive (string, number, boolean) nor the
        /// `{"value", "isDisplayable"}` form: Omnichannel allows only those.
        ContextValueNotPrimitive = "context_value_not_primitive",
        /// A context variable has an empty name.
        ContextNameEmpty = "context_name_empty",
        /// A context variable name is longer than Omnichannel's 100 characters.
        ContextNameTooLong = "context_name_too_long",
        /// A context value is longer than Omnichannel's 4,000 characters.
        ContextValueTooLong = "context_value_too_long",
        /// More than Omnichannel's 100 context variables.
        ContextTooManyVariables = "context_too_many_variables",
    }
}

codes! {
    /// What `/validate` reports in `warnings`: Omnichannel accepts the token, but the chat may
    /// suffer for it.
    pub enum WarningCode {
        /// Under 60 s left: the widget asks the page for a new token right after `exp`.
        ExpiresSoon = "expires_soon",
        /// `sub` is not a GUID: Omnichannel links the conversation to a contact or account
        /// record by GUID, and persistent chat needs the same `sub` for the customer.
        SubNotGuid = "sub_not_guid",
        /// No `lwicontexts`: the conversation gets no custom context, which travels only in
        /// the token for authenticated chat.
        NoLwicontexts = "no_lwicontexts",
    }
}

/// Test support: the crates that own a list of codes check docs/reference.md's tables and
/// openapi.json against it with these, so that a document cannot drift from the code.
#[cfg(any(test, feature = "test-util"))]
pub mod documents {
    use std::collections::BTreeSet;

    /// The rows of the Markdown table under `heading` (up to the next `## `), each cell trimmed
    /// of spaces and backticks; only rows whose first cell is a `code` are kept.
    pub fn table_rows<'d>(document: &'d str, heading: &str) -> Vec<Vec<&'d str>> {
        let Some((_, after)) = document.split_once(&format!("\n{heading}\n")) else {
            panic!("no section {heading:?}");
        };
        let section = after.split("\n## ").next().unwrap_or(after);
        section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|row| {
                row.split('|')
                    .map(|cell| cell.trim().trim_matches('`'))
                    .filter(|cell| !cell.is_empty())
                    .collect()
            })
            .collect()
    }

    /// One line saying what `listed` (a document's list) misses of `actual` and what it lists
    /// that is not in `actual`; `None` when they agree.
    pub fn drift<T: Ord + std::fmt::Debug>(
        document: &str,
        listed: &BTreeSet<T>,
        actual: &BTreeSet<T>,
    ) -> Option<String> {
        let missing: Vec<&T> = actual.difference(listed).collect();
        let extra: Vec<&T> = listed.difference(actual).collect();
        (!missing.is_empty() || !extra.is_empty()).then(|| {
            format!("{document}: missing {missing:?}; listed but not in the code {extra:?}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::documents::{drift, table_rows};
    use super::*;
    use std::collections::BTreeSet;

    const REFERENCE: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference.md"));
    const OPENAPI: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json"));

    fn wire(codes: &[impl Copy + std::fmt::Display]) -> BTreeSet<String> {
        codes.iter().map(ToString::to_string).collect()
    }

    fn in_reference(heading: &str) -> BTreeSet<String> {
        table_rows(REFERENCE, heading)
            .into_iter()
            .map(|row| row[0].to_owned())
            .collect()
    }

    fn in_openapi(schema: &str) -> BTreeSet<String> {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let listed = doc["components"]["schemas"][schema]["properties"]["code"]["enum"].as_array();
        listed
            .unwrap_or_else(|| panic!("openapi.json: {schema}.code has no enum"))
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_documents_list_every_problem_and_warning_code_and_no_other() {
        let problems = wire(ProblemCode::ALL);
        let warnings = wire(WarningCode::ALL);
        let drifts: Vec<String> = [
            drift(
                "docs/reference.md, problem codes",
                &in_reference("## Validation problem codes"),
                &problems,
            ),
            drift(
                "docs/reference.md, warning codes",
                &in_reference("## Validation warning codes"),
                &warnings,
            ),
            drift(
                "openapi.json, Problem.code",
                &in_openapi("Problem"),
                &problems,
            ),
            drift(
                "openapi.json, Warning.code",
                &in_openapi("Warning"),
                &warnings,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(drifts.is_empty(), "{}", drifts.join("\n"));
    }
}
