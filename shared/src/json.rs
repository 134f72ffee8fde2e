//! Strict JSON: an object whose member names are unique.
//!
//! serde_json keeps the last of repeated members, other parsers the first; a token or a custom
//! context that two readers would read differently is refused instead. serde_json has no
//! option for this, so the visitor below does it.

use serde::Deserializer;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Why a document is not a JSON object with unique member names.
#[derive(Debug)]
pub enum ObjectError {
    /// A member name repeats (JSON parsers disagree on which wins, so refuse).
    Duplicate(String),
    /// Valid JSON, but not an object.
    NotAnObject,
    /// Not valid JSON.
    Syntax(serde_json::Error),
}

/// Parses a JSON object, refusing duplicate member names at the top level.
pub fn parse_unique_object(bytes: &[u8]) -> Result<Map<String, Value>, ObjectError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = de
        .deserialize_any(UniqueVisitor)
        .and_then(|v| de.end().map(|()| v));
    match result {
        Ok(Ok(map)) => Ok(map),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ObjectError::Syntax(e)),
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Result<Map<String, Value>, ObjectError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.contains_key(&key) {
                // Drain the rest so the syntax of the whole document is still checked.
                while access
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                return Ok(Err(ObjectError::Duplicate(key)));
            }
            map.insert(key, value);
        }
        Ok(Ok(map))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Err(ObjectError::NotAnObject))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(ObjectError::NotAnObject))
    }
}
