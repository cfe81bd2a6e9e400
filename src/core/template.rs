//! Name templates: how a tuple and a number become a hostname.
//!
//! `{application}-{role}-{environment}-vm{counter}` is the default (the proof of concept's
//! format). Placeholders are the three fields and `{counter}`, which may be zero-padded as
//! `{counter:03}`; everything else is literal text of lowercase letters, digits and
//! hyphens. The counter is keyed by the fields the template uses, so a template without
//! `{role}` counts once per (application, environment); the default keeps the proof of
//! concept's Vault path.

use std::fmt;

use crate::core::validate::Tuple;

pub const DEFAULT: &str = "{application}-{role}-{environment}-vm{counter}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Application,
    Role,
    Environment,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Role => "role",
            Self::Environment => "environment",
        }
    }

    fn of(self, request: &Tuple) -> &str {
        match self {
            Self::Application => request.application.as_str(),
            Self::Role => request.role.as_str(),
            Self::Environment => request.environment.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
    Counter { width: usize },
}

/// A parsed, valid template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What is wrong with a template, and where (a character offset into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub position: usize,
    pub message: String,
    pub template: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "name_template {:?}: {} at character {}\n  {}\n  {}^",
            self.template,
            self.message,
            self.position + 1,
            self.template,
            " ".repeat(self.position)
        )
    }
}

impl Default for Template {
    fn default() -> Self {
        Self::parse(DEFAULT).expect("the default template is valid")
    }
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let fail = |position: usize, message: String| {
            Err(TemplateError {
                position,
                message,
                template: source.to_string(),
            })
        };
        let chars: Vec<char> = source.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut counter_at = None;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '}' {
                return fail(i, "a '}' without its '{'".into());
            }
            if c != '{' {
                if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                    return fail(
                        i,
                        format!("{c:?} cannot be part of a hostname (lowercase letters, digits and hyphens only)"),
                    );
                }
                literal.push(c);
                i += 1;
                continue;
            }
            let Some(len) = chars[i..].iter().position(|&c| c == '}') else {
                return fail(i, "a '{' that is never closed".into());
            };
            let inner: String = chars[i + 1..i + len].iter().collect();
            let part = match inner.as_str() {
                "application" => Part::Field(Field::Application),
                "role" => Part::Field(Field::Role),
                "environment" => Part::Field(Field::Environment),
                "counter" => Part::Counter { width: 0 },
                other => match other.strip_prefix("counter:") {
                    Some(w)
                        if !w.is_empty()
                            && w.chars().all(|c| c.is_ascii_digit())
                            && w.len() <= 2 =>
                    {
                        let width: usize = w.parse().expect("digits");
                        if width == 0 || width > 20 {
                            return fail(
                                i,
                                format!("the padding of {{{other}}} must be 1 to 20 digits"),
                            );
                        }
                        Part::Counter { width }
                    }
                    _ => {
                        return fail(
                            i,
                            format!(
                                "unknown placeholder {{{other}}}; use {{application}}, {{role}}, \
                                 {{environment}}, {{counter}} or {{counter:0N}}"
                            ),
                        )
                    }
                },
            };
            if matches!(part, Part::Counter { .. }) {
                if counter_at.is_some() {
                    return fail(i, "{counter} appears twice".into());
                }
                counter_at = Some(i);
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
            i += len + 1;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if counter_at.is_none() {
            return fail(
                source.chars().count(),
                "there is no {counter}, so every name would be the same".into(),
            );
        }
        match parts.first() {
            Some(Part::Literal(l)) if !l.starts_with(|c: char| c.is_ascii_lowercase()) => {
                return fail(0, "a hostname must start with a letter".into())
            }
            Some(Part::Counter { .. }) => {
                return fail(
                    0,
                    "a hostname must start with a letter, not the counter".into(),
                )
            }
            _ => {}
        }
        if let Some(Part::Literal(l)) = parts.last() {
            if l.ends_with('-') {
                return fail(
                    source.chars().count() - 1,
                    "a hostname must not end with a hyphen".into(),
                );
            }
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_default(&self) -> bool {
        self.source == DEFAULT
    }

    fn uses(&self, field: Field) -> bool {
        self.parts.contains(&Part::Field(field))
    }

    /// The name for `request` and `number`, whatever its length.
    pub fn render(&self, request: &Tuple, number: u64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Field(f) => out.push_str(f.of(request)),
                Part::Counter { width } => out.push_str(&format!("{number:0width$}")),
            }
        }
        out
    }

    /// Where the counter for `request` lives: one per combination of the fields the
    /// template uses; a field it does not use is `_` in the path (never a valid field).
    pub fn counter_path(&self, request: &Tuple) -> String {
        let segment = |f: Field| {
            if self.uses(f) {
                f.of(request).to_string()
            } else {
                "_".to_string()
            }
        };
        format!(
            "applications/{}/{}/{}/counter",
            segment(Field::Application),
            segment(Field::Role),
            segment(Field::Environment)
        )
    }

    /// The fields this template does not use, for documentation and listing.
    pub fn unused(&self) -> Vec<&'static str> {
        [Field::Application, Field::Role, Field::Environment]
            .into_iter()
            .filter(|f| !self.uses(*f))
            .map(Field::name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Tuple {
        Tuple::parse("web", "app", "prod").unwrap()
    }

    fn err(t: &str) -> TemplateError {
        Template::parse(t).unwrap_err()
    }

    #[test]
    fn the_default_template_is_the_proof_of_concepts_format_and_path() {
        let t = Template::default();
        assert_eq!(t.render(&req(), 7), "web-app-prod-vm7");
        assert_eq!(t.counter_path(&req()), "applications/web/app/prod/counter");
    }

    #[test]
    fn the_counter_can_be_zero_padded_and_fields_reordered_or_left_out() {
        let t = Template::parse("{environment}-{application}-{counter:03}").unwrap();
        assert_eq!(t.render(&req(), 7), "prod-web-007");
        assert_eq!(t.render(&req(), 1234), "prod-web-1234");
        assert_eq!(t.counter_path(&req()), "applications/web/_/prod/counter");
        assert_eq!(t.unused(), ["role"]);
        let fixed = Template::parse("acme-{application}{counter}").unwrap();
        assert_eq!(fixed.render(&req(), 2), "acme-web2");
    }

    #[test]
    fn an_unknown_placeholder_is_pointed_at() {
        let e = err("{application}-{rol}-{counter}");
        assert_eq!(e.position, 14);
        let shown = e.to_string();
        assert!(shown.contains("unknown placeholder {rol}"), "{shown}");
        assert!(
            shown.ends_with(&format!("\n  {}^", " ".repeat(14))),
            "{shown}"
        );
    }

    #[test]
    fn broken_templates_say_what_is_wrong() {
        for (t, what) in [
            ("{application}-vm", "no {counter}"),
            ("{application}-{counter}-{counter}", "appears twice"),
            ("{application-{counter}", "unknown placeholder"),
            ("{application}-{counter", "never closed"),
            ("{application}}-{counter}", "without its"),
            ("{application}_{counter}", "cannot be part of a hostname"),
            ("Web-{counter}", "cannot be part of a hostname"),
            ("{counter}-{application}", "start with a letter"),
            ("1-{application}{counter}", "start with a letter"),
            ("{application}{counter}-", "end with a hyphen"),
            ("{application}{counter:0}", "1 to 20"),
            ("{application}{counter:x}", "unknown placeholder"),
        ] {
            let e = err(t).to_string();
            assert!(e.contains(what), "{t}: {e}");
        }
    }
}
