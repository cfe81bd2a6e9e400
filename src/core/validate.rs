//! Validated request fields and the hostname they make.
//!
//! A hostname is one DNS label, so each field is a label fragment (lowercase letters,
//! digits, hyphens; a letter first; no hyphen last) and the whole name, number included,
//! must fit 63 characters. Checked before anything touches Vault.

use std::fmt;

use crate::core::template::Template;

/// The longest DNS label (RFC 1035 section 2.3.4).
pub const MAX_LABEL: usize = 63;

/// A request field that failed validation, with the reason in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.reason)
    }
}

/// One field of a hostname, known to be a valid label fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment(String);

impl Fragment {
    /// Checks `value` as the request field called `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let fail = |reason: String| Err(FieldError::new(field, reason));
        let Some(first) = value.chars().next() else {
            return fail("must not be empty".into());
        };
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            let what = match bad {
                c if c.is_ascii_uppercase() => format!("contains the uppercase letter {c:?}"),
                c if c.is_whitespace() => "contains whitespace".to_string(),
                c => format!("contains the character {c:?}"),
            };
            return fail(format!(
                "{what}; only lowercase letters, digits and hyphens are allowed"
            ));
        }
        if !first.is_ascii_lowercase() {
            return fail(format!("must start with a lowercase letter, not {first:?}"));
        }
        if value.ends_with('-') {
            return fail("must not end with a hyphen".into());
        }
        if value.len() > MAX_LABEL {
            return fail(format!(
                "is {} characters long; a hostname is one DNS label of at most {MAX_LABEL}",
                value.len()
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The validated (application, role, environment) of a request: the tuple a counter
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    pub application: Fragment,
    pub role: Fragment,
    pub environment: Fragment,
}

/// The hostname for a tuple and number would not fit one DNS label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    pub length: usize,
}

impl Tuple {
    /// Validates the three fields in request order, reporting the first one at fault.
    pub fn parse(application: &str, role: &str, environment: &str) -> Result<Self, FieldError> {
        Ok(Self {
            application: Fragment::parse("application", application)?,
            role: Fragment::parse("role", role)?,
            environment: Fragment::parse("environment", environment)?,
        })
    }

    /// Refuses a tuple whose shortest possible name (number 1) cannot fit a label, before
    /// anything touches Vault.
    pub fn check_fits(&self, template: &Template) -> Result<(), FieldError> {
        match self.hostname(template, 1) {
            Ok(_) => Ok(()),
            Err(TooLong { length }) => Err(FieldError::new(
                "application",
                format!(
                    "together with role and environment makes a hostname of {length} \
                     characters; a hostname is one DNS label of at most {MAX_LABEL}"
                ),
            )),
        }
    }

    /// The hostname with `number`, or its length when that exceeds one label.
    pub fn hostname(&self, template: &Template, number: u64) -> Result<String, TooLong> {
        let name = template.render(self, number);
        if name.len() > MAX_LABEL {
            return Err(TooLong { length: name.len() });
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(field: &str, value: &str) -> String {
        Fragment::parse(field, value).unwrap_err().reason
    }

    #[test]
    fn lowercase_letters_digits_and_inner_hyphens_are_accepted() {
        assert_eq!(
            Fragment::parse("role", "web-2a").unwrap().as_str(),
            "web-2a"
        );
    }

    #[test]
    fn an_empty_field_is_rejected() {
        assert_eq!(err("role", ""), "must not be empty");
    }

    #[test]
    fn uppercase_is_rejected_naming_the_letter() {
        assert!(err("role", "Web").contains("uppercase letter 'W'"));
    }

    #[test]
    fn spaces_dots_slashes_and_underscores_are_rejected() {
        assert!(err("role", "a b").contains("whitespace"));
        for (value, c) in [
            ("a.b", "'.'"),
            ("a/b", "'/'"),
            ("a_b", "'_'"),
            ("café", "'é'"),
        ] {
            assert!(err("role", value).contains(c), "{value}");
        }
    }

    #[test]
    fn a_field_must_start_with_a_letter() {
        assert!(err("role", "1web").contains("start with a lowercase letter"));
        assert!(err("role", "-web").contains("start with a lowercase letter"));
    }

    #[test]
    fn a_trailing_hyphen_is_rejected() {
        assert_eq!(err("role", "web-"), "must not end with a hyphen");
    }

    #[test]
    fn a_label_longer_than_63_characters_is_rejected() {
        let long = "a".repeat(64);
        assert!(err("role", &long).contains("64 characters"));
        assert!(Fragment::parse("role", &"a".repeat(63)).is_ok());
    }

    #[test]
    fn the_first_invalid_field_in_request_order_is_reported() {
        let e = Tuple::parse("web", "BAD", "").unwrap_err();
        assert_eq!(e.field, "role");
    }

    #[test]
    fn the_hostname_has_the_proof_of_concept_format() {
        let r = Tuple::parse("web", "app", "prod").unwrap();
        assert_eq!(
            r.hostname(&Template::default(), 7).unwrap(),
            "web-app-prod-vm7"
        );
    }

    #[test]
    fn a_tuple_whose_shortest_name_exceeds_a_label_is_rejected() {
        // 20 + 1 + 20 + 1 + 18 + "-vm1" = 64
        let t = Template::default();
        let e = Tuple::parse(&"a".repeat(20), &"b".repeat(20), &"c".repeat(18))
            .unwrap()
            .check_fits(&t)
            .unwrap_err();
        assert!(e.reason.contains("64 characters"), "{}", e.reason);
        let fits = Tuple::parse(&"a".repeat(20), &"b".repeat(20), &"c".repeat(17)).unwrap();
        assert!(fits.check_fits(&t).is_ok());
    }

    #[test]
    fn a_number_that_grows_the_name_past_63_characters_is_refused() {
        let r = Tuple::parse(&"a".repeat(20), &"b".repeat(20), &"c".repeat(17)).unwrap();
        let t = Template::default();
        assert!(r.hostname(&t, 9).is_ok());
        assert_eq!(r.hostname(&t, 10), Err(TooLong { length: 64 }));
    }
}
