//! The custom context that travels in the `lwicontexts` claim.
//!
//! Omnichannel ignores `setContextProvider` for authenticated chat: context reaches the
//! conversation only inside the token, as a *string* holding serialized JSON. Each value must be a
//! primitive (string, number, boolean) or `{"value": primitive, "isDisplayable": bool}` (also
//! spelled `"Value"` on Microsoft's pages), and the keys must match the workstream's context
//! variables exactly, so case is kept as given.

use crate::{Error, Problem, ProblemCode};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// At most this many context variables per chat.
pub const MAX_VARIABLES: usize = 100;
/// A variable name has at most this many characters.
pub const MAX_NAME_CHARS: usize = 100;
/// A value has at most this many characters.
pub const MAX_VALUE_CHARS: usize = 4_000;

/// A primitive context value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Primitive {
    /// A JSON boolean.
    Bool(bool),
    /// A JSON number, kept exactly as given.
    Number(Number),
    /// A JSON string.
    String(String),
}

impl Primitive {
    fn char_len(&self) -> usize {
        match self {
            Primitive::Bool(true) => 4,
            Primitive::Bool(false) => 5,
            Primitive::Number(n) => n.to_string().len(),
            Primitive::String(s) => s.chars().count(),
        }
    }
}

/// One context value: plain, or with the agent-display flag.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// `"key": primitive`.
    Plain(Primitive),
    /// `"key": {"value": primitive, "isDisplayable": bool}`, or with `"Value"`.
    Detailed {
        /// What the agent sees; only primitives reach Omnichannel, never nested objects.
        value: Primitive,
        /// Whether agents see it; `None` when the object had no `isDisplayable`.
        is_displayable: Option<bool>,
        /// How the value member was spelled, so that it goes out as it came in.
        spelling: ValueSpelling,
    },
}

/// Microsoft's pages spell the value member two ways: `"value"` (the custom-context pages) and
/// `"Value"` (the display-custom-context page). Which one Omnichannel reads is not documented,
/// so both are accepted and each is passed on unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSpelling {
    /// `"value"`.
    Lower,
    /// `"Value"`.
    Capital,
}

impl ValueSpelling {
    fn key(self) -> &'static str {
        match self {
            ValueSpelling::Lower => "value",
            ValueSpelling::Capital => "Value",
        }
    }
}

impl ContextValue {
    fn primitive(&self) -> &Primitive {
        match self {
            ContextValue::Plain(p) | ContextValue::Detailed { value: p, .. } => p,
        }
    }
}

impl Serialize for ContextValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ContextValue::Plain(p) => p.serialize(serializer),
            ContextValue::Detailed {
                value,
                is_displayable,
                spelling,
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry(spelling.key(), value)?;
                if let Some(flag) = is_displayable {
                    map.serialize_entry("isDisplayable", flag)?;
                }
                map.end()
            }
        }
    }
}

/// A checked custom context: every entry within Omnichannel's limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CustomContext(BTreeMap<String, ContextValue>);

impl CustomContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when there are no variables (the token then carries no `lwicontexts`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Looks up a variable.
    pub fn get(&self, name: &str) -> Option<&ContextValue> {
        self.0.get(name)
    }

    /// True if `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Adds or replaces a variable from a JSON value, enforcing every limit.
    pub fn insert_json(&mut self, name: &str, value: &Value) -> Result<(), Error> {
        let value = check_entry(name, value)?;
        if !self.0.contains_key(name) && self.0.len() >= MAX_VARIABLES {
            return Err(too_many(self.0.len() + 1).into());
        }
        self.0.insert(name.to_owned(), value);
        Ok(())
    }

    /// The `lwicontexts` claim: the context serialized as a JSON string.
    pub fn to_lwicontexts(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Checks a decoded JSON object against every rule, collecting *all* problems (validation
    /// reports every reason at once). Returns the entries that passed and the problems found.
    pub fn check_object(map: &Map<String, Value>) -> (CustomContext, Vec<Problem>) {
        let mut context = CustomContext::new();
        let mut problems = Vec::new();
        if map.len() > MAX_VARIABLES {
            problems.push(too_many(map.len()));
        }
        for (name, value) in map {
            match check_entry(name, value) {
                Ok(v) => {
                    context.0.insert(name.clone(), v);
                }
                Err(p) => problems.push(p),
            }
        }
        (context, problems)
    }

    /// Parses an `lwicontexts` string as a consumer would, collecting every problem.
    pub fn check_lwicontexts(raw: &str) -> (CustomContext, Vec<Problem>) {
        match crate::json::parse_unique_object(raw.as_bytes()) {
            Ok(map) => Self::check_object(&map),
            Err(crate::json::ObjectError::Duplicate(key)) => (
                CustomContext::new(),
                vec![Problem::new(
                    ProblemCode::ContextDuplicateKey,
                    format!("lwicontexts repeats the key {key:?}"),
                )],
            ),
            Err(crate::json::ObjectError::NotAnObject) => (
                CustomContext::new(),
                vec![Problem::new(
                    ProblemCode::ContextNotObject,
                    "lwicontexts must serialize a JSON object",
                )],
            ),
            Err(crate::json::ObjectError::Syntax(e)) => (
                CustomContext::new(),
                vec![Problem::new(
                    ProblemCode::ContextInvalidJson,
                    format!("lwicontexts is not valid JSON: {e}"),
                )],
            ),
        }
    }
}

fn too_many(count: usize) -> Problem {
    Problem::new(
        ProblemCode::ContextTooManyVariables,
        format!("custom context has {count} variables; at most {MAX_VARIABLES} are allowed"),
    )
}

fn check_name(name: &str) -> Result<(), Problem> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err(Problem::new(
            ProblemCode::ContextNameEmpty,
            "a context variable name must not be empty",
        ));
    }
    if chars > MAX_NAME_CHARS {
        let shown: String = name.chars().take(40).collect();
        return Err(Problem::new(
            ProblemCode::ContextNameTooLong,
            format!(
                "context variable name {shown:?}... has {chars} characters; at most {MAX_NAME_CHARS} are allowed"
            ),
        ));
    }
    Ok(())
}

fn primitive(name: &str, value: &Value) -> Result<Primitive, Problem> {
    match value {
        Value::Bool(b) => Ok(Primitive::Bool(*b)),
        Value::Number(n) => Ok(Primitive::Number(n.clone())),
        Value::String(s) => Ok(Primitive::String(s.clone())),
        Value::Null | Value::Array(_) | Value::Object(_) => Err(Problem::new(
            ProblemCode::ContextValueNotPrimitive,
            format!(
                "context variable {name:?} must be a string, number or boolean (or {{\"value\", \"isDisplayable\"}})"
            ),
        )),
    }
}

/// `{"value"|"Value": primitive, "isDisplayable"?: bool}` and nothing else.
fn detailed(name: &str, obj: &Map<String, Value>) -> Result<ContextValue, Problem> {
    let not_the_form = || {
        Problem::new(
            ProblemCode::ContextValueNotPrimitive,
            format!(
                "context variable {name:?}: an object value must be {{\"value\": primitive, \"isDisplayable\": boolean}} (\"Value\" is accepted for \"value\")"
            ),
        )
    };
    let (inner, spelling) = match (obj.get("value"), obj.get("Value")) {
        (Some(v), None) => (v, ValueSpelling::Lower),
        (None, Some(v)) => (v, ValueSpelling::Capital),
        _ => return Err(not_the_form()),
    };
    let is_displayable = match obj.get("isDisplayable") {
        None => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => return Err(not_the_form()),
    };
    if obj.len() != 1 + usize::from(is_displayable.is_some()) {
        return Err(not_the_form());
    }
    Ok(ContextValue::Detailed {
        value: primitive(name, inner)?,
        is_displayable,
        spelling,
    })
}

fn check_entry(name: &str, value: &Value) -> Result<ContextValue, Problem> {
    check_name(name)?;
    let value = match value {
        Value::Object(obj) => detailed(name, obj)?,
        other => ContextValue::Plain(primitive(name, other)?),
    };
    let chars = value.primitive().char_len();
    if chars > MAX_VALUE_CHARS {
        return Err(Problem::new(
            ProblemCode::ContextValueTooLong,
            format!(
                "context variable {name:?} has a value of {chars} characters; at most {MAX_VALUE_CHARS} are allowed"
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(r: Result<(), Error>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn serializes_as_a_string_of_json_keeping_case_and_shape() {
        let mut c = CustomContext::new();
        c.insert_json("msdyn_CartValue", &json!("10000")).unwrap();
        c.insert_json("vip", &json!(true)).unwrap();
        c.insert_json("score", &json!(4.5)).unwrap();
        c.insert_json("region", &json!({"value": "EU", "isDisplayable": true}))
            .unwrap();
        let s = c.to_lwicontexts();
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(
            back,
            json!({"msdyn_CartValue": "10000", "vip": true, "score": 4.5,
                   "region": {"value": "EU", "isDisplayable": true}})
        );
    }

    /// Both spellings Microsoft's pages use for the object form come back out as they went in.
    #[test]
    fn the_object_form_round_trips_in_either_spelling() {
        for form in [
            json!({"value": "EU", "isDisplayable": true}),
            json!({"Value": "EU", "isDisplayable": false}),
            json!({"Value": 3}),
            json!({"value": true}),
        ] {
            let mut c = CustomContext::new();
            c.insert_json("region", &form).unwrap();
            let back: Value = serde_json::from_str(&c.to_lwicontexts()).unwrap();
            assert_eq!(back, json!({ "region": form }));
            let (again, problems) = CustomContext::check_lwicontexts(&c.to_lwicontexts());
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(again, c);
        }
        let err = CustomContext::new()
            .insert_json("k", &json!({"VALUE": 1}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"{"value": primitive, "isDisplayable": boolean}"#),
            "{err}"
        );
    }

    #[test]
    fn name_limits_at_and_over() {
        let mut c = CustomContext::new();
        assert!(c.insert_json(&"n".repeat(100), &json!(1)).is_ok());
        assert_eq!(
            code(c.insert_json(&"n".repeat(101), &json!(1))),
            "context_name_too_long"
        );
        assert_eq!(code(c.insert_json("", &json!(1))), "context_name_empty");
        // Characters, not bytes: 100 two-byte characters are allowed.
        assert!(c.insert_json(&"é".repeat(100), &json!(1)).is_ok());
    }

    #[test]
    fn value_limits_at_and_over_name_the_key() {
        let mut c = CustomContext::new();
        assert!(c.insert_json("a", &json!("x".repeat(4000))).is_ok());
        let err = c
            .insert_json("long_one", &json!("x".repeat(4001)))
            .unwrap_err();
        assert_eq!(err.code(), "context_value_too_long");
        assert!(err.to_string().contains("\"long_one\""));
        assert!(
            c.insert_json(
                "d",
                &json!({"value": "x".repeat(4001), "isDisplayable": false})
            )
            .is_err()
        );
    }

    #[test]
    fn variable_count_at_and_over() {
        let mut c = CustomContext::new();
        for i in 0..100 {
            c.insert_json(&format!("v{i}"), &json!(i)).unwrap();
        }
        // Replacing an existing key is not a new variable.
        assert!(c.insert_json("v5", &json!("again")).is_ok());
        assert_eq!(
            code(c.insert_json("v100", &json!(1))),
            "context_too_many_variables"
        );
    }

    #[test]
    fn non_primitives_are_refused() {
        let mut c = CustomContext::new();
        for bad in [
            json!(null),
            json!([1]),
            json!({"a": 1}),
            json!({"value": {"x": 1}, "isDisplayable": true}),
            json!({"value": 1, "isDisplayable": "yes"}),
            json!({"value": 1, "isDisplayable": true, "extra": 1}),
            json!({"value": 1, "Value": 1}),
            json!({"VALUE": 1, "isDisplayable": true}),
            json!({"Value": 1, "IsDisplayable": true}),
            json!({"isDisplayable": true}),
        ] {
            assert_eq!(
                code(c.insert_json("k", &bad)),
                "context_value_not_primitive",
                "{bad}"
            );
        }
    }

    #[test]
    fn check_lwicontexts_reports_every_problem() {
        let raw = format!(
            r#"{{"ok": 1, "bad": [1], "{}": 1, "long": "{}"}}"#,
            "k".repeat(101),
            "v".repeat(4001)
        );
        let (ctx, problems) = CustomContext::check_lwicontexts(&raw);
        let codes: Vec<_> = problems.iter().map(|p| p.code).collect();
        assert_eq!(ctx.len(), 1);
        assert_eq!(codes.len(), 3);
        assert!(codes.contains(&ProblemCode::ContextValueNotPrimitive));
        assert!(codes.contains(&ProblemCode::ContextNameTooLong));
        assert!(codes.contains(&ProblemCode::ContextValueTooLong));
        assert_eq!(
            CustomContext::check_lwicontexts(r#"{"a":1,"a":2}"#).1[0].code,
            ProblemCode::ContextDuplicateKey
        );
        assert_eq!(
            CustomContext::check_lwicontexts("[1]").1[0].code,
            ProblemCode::ContextNotObject
        );
        assert_eq!(
            CustomContext::check_lwicontexts("{").1[0].code,
            ProblemCode::ContextInvalidJson
        );
    }

    /// Found by the `context` fuzz target (fuzz/artifacts/context/crash-8aa02ab2...): with
    /// serde_json's default float parser (not correctly rounded) this context re-serialized as
    /// `1.8446744073150958e+22`, which then read back as `1.844674407315096e22`; the validator
    /// reported a different number than the token carried. Fixed by serde_json's
    /// `float_roundtrip` feature in shared/Cargo.toml.
    #[test]
    fn numbers_round_trip_exactly_through_lwicontexts() {
        let raw = r#"{"caf\u00e9":"\ud83d\ude00 \"quotod\" \\c abk","n":18446744073150957611616}"#;
        let (parsed, problems) = CustomContext::check_lwicontexts(raw);
        assert!(problems.is_empty(), "{problems:?}");
        let again = parsed.to_lwicontexts();
        let (reparsed, problems) = CustomContext::check_lwicontexts(&again);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(reparsed, parsed, "{again}");

        for text in [
            "1.8446744073150958e+22",
            "-1.8218816927580057e+294",
            "-1.0729132283643165e-38",
            "0.30000000000000004",
        ] {
            let exact = Number::from_f64(text.parse().unwrap()).unwrap();
            let (c, problems) = CustomContext::check_lwicontexts(&format!(r#"{{"n":{text}}}"#));
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(
                c.get("n"),
                Some(&ContextValue::Plain(Primitive::Number(exact))),
                "{text}"
            );
        }
    }
}
