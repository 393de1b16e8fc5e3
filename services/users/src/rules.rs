//! What a username, a display name and a password must be.

use superclient::ApiError;

use crate::password;

pub fn check_username(username: &str) -> Result<(), ApiError> {
    let valid = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "a username is 3 to 32 characters of a-z, 0-9 and _",
        ))
    }
}

/// Trims; 1 to 100 characters with no control characters.
pub fn check_display_name(display_name: &str) -> Result<String, ApiError> {
    let trimmed = display_name.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > 100 || trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "a display name is 1 to 100 characters, with no control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn check_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < password::MIN_LENGTH {
        return Err(ApiError::invalid(format!(
            "a password has at least {} characters",
            password::MIN_LENGTH
        )));
    }
    if length > password::MAX_LENGTH {
        return Err(ApiError::invalid(format!(
            "a password has at most {} characters",
            password::MAX_LENGTH
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for good in ["abc", "alice_99", &"a".repeat(32)] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Alice",
            "al ice",
            "alice!",
            "élise",
            &"a".repeat(33),
            "",
        ] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(check_display_name("  Alice A. ").unwrap(), "Alice A.");
        assert!(check_display_name("   ").is_err());
        assert!(check_display_name("a\u{7}b").is_err());
        assert!(check_display_name(&"é".repeat(100)).is_ok());
        assert!(check_display_name(&"é".repeat(101)).is_err());
    }

    #[test]
    fn passwords_have_ten_characters_at_least() {
        assert!(check_password("123456789").is_err());
        assert!(check_password("1234567890").is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }
}
