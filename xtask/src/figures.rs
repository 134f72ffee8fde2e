//! What a run measures. Every row of the table is a [`Figure`], named by an [`Id`]; the id also
//! gives the figure's unit and the floor operation it is set against, so that the goals and the
//! table agree on both.

use crate::floor::{Floor, Floors};

/// An RSA-2048 operation of the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The private-key operation (what minting costs).
    Sign,
    /// The public-key operation (what validating costs).
    Verify,
}

impl Op {
    /// `sign` or `verify`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Sign => "sign",
            Op::Verify => "verify",
        }
    }

    /// Seconds per operation in `floor`.
    pub fn of(self, floor: &Floor) -> f64 {
        match self {
            Op::Sign => floor.sign,
            Op::Verify => floor.verify,
        }
    }
}

/// The unit of a figure's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Time (CPU or wall) per operation.
    Seconds,
    /// Requests per second (of server CPU, for the HTTP rows).
    PerSecond,
    /// Memory.
    Bytes,
    /// Calls per invocation.
    PerInvocation,
}

/// A function binary run under the Lambda runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `GET /token`.
    MintToken,
    /// `POST /validate`.
    ValidateToken,
    /// `GET /public-key`.
    PublicKeys,
    /// The bench's do-nothing function (xtask/src/bin/do-nothing.rs), answering 204: what the
    /// runtime client, lambda_http and axum cost every function per invocation.
    DoNothing,
}

impl Function {
    /// Every function measured, mint-token first: its token is what validate-token validates.
    pub const ALL: [Function; 3] = [
        Function::MintToken,
        Function::ValidateToken,
        Function::PublicKeys,
    ];

    /// The binary's (and the Lambda function's) name.
    pub fn name(self) -> &'static str {
        match self {
            Function::MintToken => "mint-token",
            Function::ValidateToken => "validate-token",
            Function::PublicKeys => "public-keys",
            Function::DoNothing => "do-nothing",
        }
    }

    /// The status of its answer.
    pub fn status(self) -> u16 {
        match self {
            Function::DoNothing => 204,
            _ => 200,
        }
    }
}

/// What a figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    /// The RS256 signature alone.
    Rs256,
    /// What `/token` does per request: context, claims, JSON, base64url, signature.
    Mint,
    /// The RSA verification alone.
    Verify,
    /// What `/validate` does: decode, strict JSON, signature, every check.
    FullValidation,
    /// Full validation and the `/validate` JSON report.
    ValidationReport,
    /// Context from three claims.
    ContextBuild,
    /// Context to `lwicontexts`.
    ContextSerialize,
    /// `lwicontexts` parsed and checked.
    ContextCheck,
    /// The multi-key, PEM and JWKS documents of a three-key ring.
    PublicKeyDocs,
    /// A private key parsed by aws-lc, as the domain crate does the first time.
    KeyParseUncached,
    /// A private key parsed again (remembered by the domain crate).
    KeyParse,
    /// A whole stored ring read (start, cache refresh).
    RingParse,
    /// Local server, `GET /token`, one connection.
    TokenC1,
    /// Local server, `GET /token`, 16 connections.
    TokenC16,
    /// The Node.js peer (xtask/peer/jose-server.mjs), `GET /token`, 16 connections.
    TokenNodeJose,
    /// Local server, `POST /validate`, 16 connections.
    ValidateC16,
    /// Local server, spawn to the first 200 from `/token`.
    ColdStartLocal,
    /// Local server, peak resident memory after the loads.
    PeakRss,
    /// A function with the file ring, spawn to its first answer.
    LambdaColdFile(Function),
    /// A function with the Secrets Manager store, spawn to its first answer.
    LambdaColdSecrets(Function),
    /// A function's CPU per warm invocation (Secrets Manager store).
    WarmCpu(Function),
    /// Secrets Manager calls per warm invocation of a function.
    SecretsCalls(Function),
    /// mint-token's CPU per warm invocation in KMS custody: KMS (moto's) signs.
    WarmCpuKms,
    /// The largest function's peak resident memory over its warm invocations.
    FunctionRss,
    /// The largest of the deployed functions' zips (the binary as `bootstrap`, deflated).
    LambdaZip,
}

impl Id {
    /// The table's row label.
    pub fn label(self) -> String {
        let fixed = match self {
            Id::Rs256 => "in-process RS256 signature only (aws-lc)",
            Id::Mint => "in-process mint: context + claims + RS256 sign",
            Id::Verify => "in-process RSA verify only (aws-lc)",
            Id::FullValidation => "in-process full validation (signature + every check)",
            Id::ValidationReport => "in-process validation + /validate JSON report",
            Id::ContextBuild => "in-process context: build from 3 claims",
            Id::ContextSerialize => "in-process context: serialize (lwicontexts)",
            Id::ContextCheck => "in-process context: parse + check lwicontexts",
            Id::PublicKeyDocs => "in-process public key documents (3 keys)",
            Id::KeyParseUncached => {
                "in-process private key parse, first time (PKCS#8 + aws-lc's RSA checks)"
            }
            Id::KeyParse => "in-process private key parse, again (remembered; kid check)",
            Id::RingParse => "in-process stored ring parse (start, cache refresh)",
            Id::TokenC1 => "HTTP GET /token, 1 core, concurrency 1",
            Id::TokenC16 => "HTTP GET /token, 1 core, concurrency 16",
            Id::TokenNodeJose => {
                "Node.js http + jose GET /token, 1 core, concurrency 16 (the peer: one RS256 \
                 signature, no caller verification)"
            }
            Id::ValidateC16 => "HTTP POST /validate, 1 core, concurrency 16",
            Id::ColdStartLocal => "cold start, local server: spawn → first 200 from /token",
            Id::PeakRss => "peak RSS of the local server under load (VmHWM)",
            Id::FunctionRss => "peak RSS of the largest function over its warm invocations (VmHWM)",
            Id::LambdaZip => {
                "Lambda zip of the largest function (x86_64 release binary, stripped, as \
                 `bootstrap`, deflated)"
            }
            Id::LambdaColdFile(f) => {
                return format!(
                    "cold start, {} under cargo-lambda's local runtime, file ring: spawn → \
                     first answer",
                    f.name()
                );
            }
            Id::LambdaColdSecrets(f) => {
                return format!(
                    "cold start, {} with the Secrets Manager store (moto): spawn → first answer",
                    f.name()
                );
            }
            Id::WarmCpu(f) => {
                return format!(
                    "{} CPU per warm invocation (Runtime API round trip, handler, response)",
                    f.name()
                );
            }
            Id::WarmCpuKms => {
                "mint-token CPU per warm invocation in KMS custody (moto's KMS signs; the wall \
                 time is moto's, not AWS KMS's)"
            }
            Id::SecretsCalls(f) => {
                return format!(
                    "Secrets Manager calls per warm invocation of {} (moto's request log)",
                    f.name()
                );
            }
        };
        fixed.to_owned()
    }

    /// The unit of the figure's value.
    pub const fn unit(self) -> Unit {
        match self {
            Id::TokenC1 | Id::TokenC16 | Id::TokenNodeJose | Id::ValidateC16 => Unit::PerSecond,
            Id::PeakRss | Id::FunctionRss | Id::LambdaZip => Unit::Bytes,
            Id::SecretsCalls(_) => Unit::PerInvocation,
            _ => Unit::Seconds,
        }
    }

    /// The floor operation the ratio column sets the figure against, if any: the RSA operation
    /// the measured work is built around, or that it is most easily compared with.
    pub const fn against(self) -> Option<Op> {
        match self {
            Id::Rs256
            | Id::Mint
            | Id::KeyParseUncached
            | Id::KeyParse
            | Id::RingParse
            | Id::TokenC1
            | Id::TokenC16
            | Id::TokenNodeJose
            | Id::WarmCpu(_)
            | Id::WarmCpuKms => Some(Op::Sign),
            Id::Verify | Id::FullValidation | Id::ValidationReport | Id::ValidateC16 => {
                Some(Op::Verify)
            }
            _ => None,
        }
    }
}

/// One measurement of a figure, with the floor taken just before it (its index in [`Floors`]),
/// if floors are measured.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// The value, in the id's unit.
    pub value: f64,
    /// The floor taken just before.
    pub floor: Option<usize>,
}

/// A measured figure: one or more rounds, and the result column's text.
#[derive(Debug)]
pub struct Figure {
    /// What it measures.
    pub id: Id,
    /// Rounds (in-process rounds, cold start runs); at least one.
    pub rounds: Vec<Round>,
    /// The value as the table shows it, with what else was seen (latency, counts, memory).
    pub detail: String,
}

impl Figure {
    /// A figure of one round.
    pub fn single(id: Id, value: f64, floor: Option<usize>, detail: String) -> Self {
        Figure {
            id,
            rounds: vec![Round { value, floor }],
            detail,
        }
    }

    /// The median value over rounds.
    pub fn value(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.value))
    }

    /// Each round's time per operation (a rate's inverse) with the time of `op` in the floors
    /// taken around it; `None` without floors, or for a unit that is not a time or a rate.
    fn timed(&self, op: Op, floors: &Floors) -> Option<Vec<(f64, f64)>> {
        self.rounds
            .iter()
            .map(|round| {
                let floor = op.of(&floors.around(round.floor?)?);
                match self.id.unit() {
                    Unit::Seconds => Some((round.value, floor)),
                    Unit::PerSecond => Some((1.0 / round.value, floor)),
                    Unit::Bytes | Unit::PerInvocation => None,
                }
            })
            .collect()
    }

    /// The median over rounds of the time beyond one `op` of the run's median floor: what the
    /// work costs besides the RSA operation it is built around. One floor for the whole run,
    /// not the floors around each round, because overheads of two figures are compared with
    /// each other: one run's floors ranged from 249.6 to 469.0 µs, and subtracting a different
    /// one from each side compared the floors, not the servers.
    pub fn overhead(&self, op: Op, floors: &Floors) -> Option<f64> {
        let taken = floors.taken();
        if taken.is_empty() {
            return None;
        }
        let floor = median(taken.iter().map(|f| op.of(f)));
        let timed = self.timed(op, floors)?;
        Some(median(timed.iter().map(|(time, _)| time - floor)))
    }

    /// The median over rounds of the time beyond `baseline` seconds, as a multiple of `op`.
    pub fn beyond(&self, baseline: f64, op: Op, floors: &Floors) -> Option<f64> {
        let timed = self.timed(op, floors)?;
        Some(median(
            timed.iter().map(|(time, floor)| (time - baseline) / floor),
        ))
    }

    /// The median over rounds of each round's value set against `op` of the floors taken
    /// around it (a time as a multiple of the floor's time, a rate as a multiple of its rate);
    /// `None` without floors, or for a unit that has no ratio.
    pub fn ratio(&self, op: Op, floors: &Floors) -> Option<f64> {
        let ratios = self
            .rounds
            .iter()
            .map(|round| {
                let floor = op.of(&floors.around(round.floor?)?);
                match self.id.unit() {
                    Unit::Seconds => Some(round.value / floor),
                    Unit::PerSecond => Some(round.value * floor),
                    Unit::Bytes | Unit::PerInvocation => None,
                }
            })
            .collect::<Option<Vec<f64>>>()?;
        Some(median(ratios))
    }
}

/// The median (the mean of the middle two for an even count); NaN for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median([]).is_nan());
    }
}
