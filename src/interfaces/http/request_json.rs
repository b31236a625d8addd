//! Reading a GraphQL request from JSON, strictly: one object (an array is a batch, whatever
//! it holds), and no key given twice in any object of it. A JSON map that keeps the last of
//! two equal keys lets a request say one thing to whatever reads the first and another to the
//! server (`{"email": "a…", "email": "b…"}` registered `b…`), so a repeat is refused.
//!
//! The reader is serde_json's, walked once: each key is checked against its object's keys as
//! it is inserted (a hash map, so the pass stays linear), and serde_json's recursion limit
//! (128 levels) bounds the nesting before anything deeper reaches the stack.

use std::collections::{HashMap, HashSet};
use std::fmt;

use async_graphql::indexmap::IndexMap;
use async_graphql::{Extensions, Name, Number, Value, Variables};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a body is not a GraphQL request; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// A JSON array: a batch, or the tuple form a derived reader would accept.
    Batch,
    /// Anything else, with a message that names no type of ours.
    Invalid(String),
}

/// Reads a `POST` body.
pub fn from_body(body: &[u8]) -> Result<async_graphql::Request, Unreadable> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'[') {
        return Err(Unreadable::Batch);
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let fields = reader
        .deserialize_map(BodyVisitor)
        .and_then(|fields| reader.end().map(|()| fields))
        .map_err(|error| {
            Unreadable::Invalid(format!(
                "The request body is not a GraphQL request: {error}."
            ))
        })?;
    Ok(fields.into_request())
}

/// Reads the `variables` or `extensions` parameter of a `GET` (a JSON object, or nothing).
pub fn object_parameter(name: &str, text: &str) -> Result<IndexMap<Name, Value>, Unreadable> {
    let mut reader = serde_json::Deserializer::from_str(text);
    ObjectOrNull
        .deserialize(&mut reader)
        .and_then(|object| reader.end().map(|()| object.unwrap_or_default()))
        .map_err(|error| {
            Unreadable::Invalid(format!("The URL's \"{name}\" is not valid: {error}."))
        })
}

/// The fields of a request body.
#[derive(Default)]
pub struct Fields {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: IndexMap<Name, Value>,
    pub extensions: IndexMap<Name, Value>,
}

impl Fields {
    pub fn into_request(self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query);
        request.operation_name = self.operation_name;
        request.variables = Variables::from_value(Value::Object(self.variables));
        request.extensions = Extensions(
            self.extensions
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect::<HashMap<_, _>>(),
        );
        request
    }
}

/// A key, quoted for a message and cut short: the client may have sent a megabyte of it.
fn repeated<E: de::Error>(key: &str) -> E {
    let shown: String = key.chars().take(40).collect();
    let cut = if shown.len() < key.len() { "…" } else { "" };
    E::custom(format!(
        "the key \"{shown}{cut}\" appears twice in one object"
    ))
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a \"query\" string")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(repeated(&key));
            }
            match key.as_str() {
                "query" => fields.query = map.next_value::<String>()?,
                "operationName" => fields.operation_name = map.next_value::<Option<String>>()?,
                "variables" => {
                    fields.variables = map.next_value_seed(ObjectOrNull)?.unwrap_or_default();
                }
                "extensions" => {
                    fields.extensions = map.next_value_seed(ObjectOrNull)?.unwrap_or_default();
                }
                // Unknown members are ignored, as the GraphQL-over-HTTP spec allows, but read
                // with the same strictness.
                _ => {
                    map.next_value_seed(StrictValue)?;
                }
            }
        }
        Ok(fields)
    }
}

/// `variables` and `extensions`: an object, or `null` for none.
struct ObjectOrNull;

impl<'de> DeserializeSeed<'de> for ObjectOrNull {
    type Value = Option<IndexMap<Name, Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectOrNull {
    type Value = Option<IndexMap<Name, Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        object(map).map(Some)
    }
}

/// Any JSON value, as a GraphQL value, refusing a repeated key in any object.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        object(map).map(Value::Object)
    }
}

fn object<'de, A: MapAccess<'de>>(mut map: A) -> Result<IndexMap<Name, Value>, A::Error> {
    let mut object = IndexMap::new();
    while let Some(key) = map.next_key::<String>()? {
        if object.contains_key(key.as_str()) {
            return Err(repeated(&key));
        }
        let value = map.next_value_seed(StrictValue)?;
        object.insert(Name::new(key), value);
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(body: &str) -> String {
        match from_body(body.as_bytes()) {
            Err(Unreadable::Invalid(message)) => message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn reads_a_request_object() {
        let request = from_body(
            br#"{"query": "{ a }", "operationName": "A", "variables": {"x": [1, {"y": null}]},
                "extensions": {"persistedQuery": {"version": 1}}, "other": true}"#,
        )
        .unwrap();
        assert_eq!(request.query, "{ a }");
        assert_eq!(request.operation_name.as_deref(), Some("A"));
        assert_eq!(
            request.variables.into_value(),
            async_graphql::value!({"x": [1, {"y": null}]})
        );
        assert!(request.extensions.contains_key("persistedQuery"));
        let empty = from_body(br#"{"variables": null, "extensions": null}"#).unwrap();
        assert_eq!(empty.query, "");
        assert!(empty.variables.is_empty());
    }

    #[test]
    fn refuses_arrays_as_batches_and_repeated_keys_at_any_depth() {
        for body in [r#"["{ a }", "A"]"#, " [ ]", r#"[{"query": "{ a }"}]"#] {
            assert_eq!(from_body(body.as_bytes()).unwrap_err(), Unreadable::Batch);
        }
        for body in [
            r#"{"query": "{ a }", "query": "{ b }"}"#,
            r#"{"query": "{ a }", "variables": {"x": 1, "x": 2}}"#,
            r#"{"query": "{ a }", "variables": {"x": [{"y": 1, "y": 1}]}}"#,
            r#"{"query": "{ a }", "extensions": {"e": {"f": {}, "f": {}}}}"#,
            r#"{"query": "{ a }", "z": {"k": 1, "k": 2}}"#,
        ] {
            assert!(invalid(body).contains("appears twice"), "{body}");
        }
        let long = format!(
            r#"{{"variables": {{"{k}": 1, "{k}": 2}}}}"#,
            k = "k".repeat(10_000)
        );
        assert!(invalid(&long).len() < 200);
    }

    #[test]
    fn messages_name_no_type_of_ours() {
        for body in [
            "42",
            "null",
            "{",
            r#"{"query": 1}"#,
            r#"{"variables": []}"#,
            "{} {}",
        ] {
            let message = invalid(body);
            assert!(
                message.starts_with("The request body is not a GraphQL request: "),
                "{message}"
            );
            for internal in ["Request", "Variables", "Name", "enum", "struct"] {
                assert!(!message.contains(internal), "{body}: {message}");
            }
        }
    }

    #[test]
    fn nesting_is_bounded_before_the_stack_is() {
        let deep = format!(
            r#"{{"variables": {{"a": {}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(invalid(&deep).contains("recursion limit"));
        let fine = format!(
            r#"{{"variables": {{"a": {}1{}}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(from_body(fine.as_bytes()).is_ok());
    }
}
