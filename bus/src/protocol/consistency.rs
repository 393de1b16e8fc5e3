//! The consistency object `{key, value}`: a value is the event's index in its
//! key's sequence, or `"*"` for "the next one, whatever it is".

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsistencyValue {
    /// The writer has seen every earlier event of the key; the bus accepts
    /// the event only if this is exactly the next value.
    Explicit(i64),
    /// `"*"`: the bus assigns the next value.
    #[default]
    Implicit,
}

impl Serialize for ConsistencyValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Explicit(value) => serializer.serialize_i64(*value),
            Self::Implicit => serializer.serialize_str("*"),
        }
    }
}

impl<'de> Deserialize<'de> for ConsistencyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ConsistencyValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"*\"")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                i64::try_from(value)
                    .map(ConsistencyValue::Explicit)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                if value < 0 {
                    return Err(E::invalid_value(de::Unexpected::Signed(value), &self));
                }
                Ok(ConsistencyValue::Explicit(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                if value == "*" {
                    Ok(ConsistencyValue::Implicit)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(value), &self))
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ConsistencyValue::Implicit)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A key and the value the writer claims for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    pub key: String,
    #[serde(default)]
    pub value: ConsistencyValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ConsistencyValue, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_integers_star_and_absent() {
        assert_eq!(parse("0"), Ok(ConsistencyValue::Explicit(0)));
        assert_eq!(parse("41"), Ok(ConsistencyValue::Explicit(41)));
        assert_eq!(parse("\"*\""), Ok(ConsistencyValue::Implicit));
        let absent: Consistency = serde_json::from_str(r#"{"key":"acc-1"}"#).unwrap();
        assert_eq!(absent.value, ConsistencyValue::Implicit);
    }

    #[test]
    fn refuses_negatives_fractions_and_other_strings() {
        for bad in ["-1", "1.5", "\"4\"", "true", "18446744073709551615"] {
            let error = parse(bad).expect_err(bad);
            assert!(
                error.contains("a non-negative integer or \"*\""),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn serialises_as_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&ConsistencyValue::Explicit(4)).unwrap(),
            "4"
        );
        assert_eq!(
            serde_json::to_string(&ConsistencyValue::Implicit).unwrap(),
            "\"*\""
        );
    }
}
