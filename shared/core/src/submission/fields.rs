//! A landing page's posted fields, read straight from the body with their text borrowed from it.
//!
//! Capture used to build a `serde_json::Value` tree and then pick it apart; every key and string
//! was copied twice on the way and every field cost a map node. These fields are what that tree
//! held, in the same order and with the same duplicates rule, so that everything read from them
//! (problems and their order included) is what the tree gave.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// One field's value as the body gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'a, str>),
    /// An array or an object: never a usable value, but kept whole so that a body's fingerprint
    /// (capture's idempotency) sees it as it came.
    Nested(Value),
}

impl<'a> FieldValue<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `serde_json` would have parsed it.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::Text(s) => Value::String(s.to_string()),
            Self::Nested(v) => v.clone(),
        }
    }
}

/// Written exactly as the `Value` it stands for.
impl Serialize for FieldValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::Text(s) => serializer.serialize_str(s),
            Self::Nested(v) => v.serialize(serializer),
        }
    }
}

/// Why a JSON body gave no fields.
#[derive(Debug)]
pub enum BodyError {
    /// Valid JSON, but not an object.
    NotAnObject,
    /// Not JSON; the error knows the line and column.
    Malformed(serde_json::Error),
}

/// The fields of a submission by name, each name once (the last of duplicates wins), in name
/// order: what a `serde_json::Map` of the same body holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a> {
    entries: Vec<(Cow<'a, str>, FieldValue<'a>)>,
}

impl<'a> Fields<'a> {
    /// The fields of a JSON body, which must be one object. Exactly the bodies
    /// `serde_json::from_slice::<Value>` reads are read, and the same errors are reported.
    pub fn from_json(body: &'a [u8]) -> Result<Self, BodyError> {
        // Checked as UTF-8 once, the body's strings are not checked again one by one (a tenth of
        // the parse); a body that is not UTF-8 is parsed as bytes, for serde_json's own error.
        let parsed = match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str::<Body<'a>>(text),
            Err(_) => serde_json::from_slice::<Body<'a>>(body),
        };
        match parsed {
            Ok(Body::Object(fields)) => Ok(fields),
            Ok(Body::Other) => Err(BodyError::NotAnObject),
            Err(e) => Err(BodyError::Malformed(e)),
        }
    }

    /// Fields from name-value pairs in the order they came; a repeated name keeps its last value.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Cow<'a, str>, FieldValue<'a>)>) -> Self {
        let mut entries: Vec<_> = pairs.into_iter().collect();
        // A stable sort keeps repeats in arrival order; each run then collapses onto its last.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Self { entries }
    }

    pub fn get(&self, name: &str) -> Option<&FieldValue<'a>> {
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn remove(&mut self, name: &str) -> Option<FieldValue<'a>> {
        self.position(name).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The fields as the `serde_json::Map` the same body parses to.
    pub fn to_json_map(&self) -> Map<String, Value> {
        self.entries.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_ref().cmp(name))
    }
}

impl<'a> IntoIterator for Fields<'a> {
    type Item = (Cow<'a, str>, FieldValue<'a>);
    type IntoIter = std::vec::IntoIter<Self::Item>;

    /// The fields in name order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// A whole JSON body: an object's fields, or anything else (read in full, so that its errors
/// are found and reported where `Value` would report them).
enum Body<'a> {
    Object(Fields<'a>),
    Other,
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key_seed(Text)? {
            pairs.push((key, map.next_value::<FieldValue<'de>>()?));
        }
        Ok(Body::Object(Fields::from_pairs(pairs)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        // Read as a `Value` rather than skipped: skipping does not check its strings' UTF-8.
        Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Body::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Body::Other)
    }
}

/// A string borrowed from the body when it has no escapes, else copied.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

impl<'de> Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

struct FieldValueVisitor;

impl<'de> Visitor<'de> for FieldValueVisitor {
    type Value = FieldValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(FieldValue::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(FieldValue::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(FieldValue::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // As `Value` does: JSON has no non-finite numbers, so this is a formality.
        Ok(Number::from_f64(n).map_or(FieldValue::Null, FieldValue::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(FieldValue::Text(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(FieldValue::Text(Cow::Owned(s.to_string())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(FieldValue::Text(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(FieldValue::Nested)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(FieldValue::Nested)
    }
}
