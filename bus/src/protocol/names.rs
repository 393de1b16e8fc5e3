//! Names of event types and client types: 1..=128 of `[A-Za-z0-9_.-]`.

use std::collections::BTreeSet;

pub const MAX_NAME_CHARS: usize = 128;

pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The event types a registration or query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    /// `["*"]`: every type.
    All,
    /// A non-empty set of type names.
    Only(BTreeSet<String>),
}

impl EventTypes {
    /// Checks a list from the wire; `field` names it in the error.
    pub fn from_list(list: Vec<String>, field: &str) -> Result<Self, String> {
        if list.is_empty() {
            return Err(format!(
                "{field} must not be empty; use [\"*\"] for every type"
            ));
        }
        if list.iter().any(|name| name == "*") {
            return if list.len() == 1 {
                Ok(Self::All)
            } else {
                Err(format!("{field}: \"*\" must be the only entry"))
            };
        }
        for (index, name) in list.iter().enumerate() {
            if !is_valid_name(name) {
                return Err(format!(
                    "{field}[{index}] must be 1 to {MAX_NAME_CHARS} characters of A-Z, a-z, 0-9, '_', '.', '-'"
                ));
            }
        }
        Ok(Self::Only(list.into_iter().collect()))
    }

    pub fn contains(&self, event_type: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(event_type),
        }
    }

    /// The list form used on the wire and in the database.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Self::All => vec!["*".to_owned()],
            Self::Only(types) => types.iter().cloned().collect(),
        }
    }

    /// Both sets together.
    pub fn union(&self, other: &Self) -> Self {
        match (self, other) {
            (Self::All, _) | (_, Self::All) => Self::All,
            (Self::Only(a), Self::Only(b)) => Self::Only(a.union(b).cloned().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_protocol() {
        assert!(is_valid_name("AccountCreated"));
        assert!(is_valid_name("v2.Account_created-x"));
        assert!(is_valid_name(&"a".repeat(128)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(129)));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name("naïve"));
        assert!(!is_valid_name("*"));
    }

    #[test]
    fn type_lists() {
        assert_eq!(
            EventTypes::from_list(vec!["*".into()], "f"),
            Ok(EventTypes::All)
        );
        assert!(EventTypes::from_list(vec![], "f").is_err());
        assert!(EventTypes::from_list(vec!["*".into(), "A".into()], "f").is_err());
        assert_eq!(
            EventTypes::from_list(vec!["A".into(), "bad name".into()], "event_types"),
            Err(
                "event_types[1] must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-'".into()
            )
        );
        let a = EventTypes::from_list(vec!["A".into()], "f").unwrap();
        let b = EventTypes::from_list(vec!["B".into()], "f").unwrap();
        assert!(a.union(&b).contains("B") && a.union(&b).contains("A"));
        assert_eq!(a.union(&EventTypes::All), EventTypes::All);
    }
}
