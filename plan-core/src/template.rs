//! `{{name}}` variables in commands and texts, and POSIX shell quoting.
//!
//! `{{{{` is a literal `{{` (for Go templates in checks such as
//! `docker inspect -f '{{{{.State.Running}}'`); a `}}` needs no escape.
//!
//! In shell commands a variable expands to its value *quoted*, so a value can
//! never split into words or run as code. In other texts (paths, prompts,
//! addresses) it expands as is and the result is validated like any value.

use std::borrow::Cow;

/// One `{{name}}` occurrence in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placeholder {
    /// The variable name.
    pub name: String,
    /// The placeholder text as written (`{{ name }}`), to find it in the file.
    pub written: String,
}

/// A problem in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// A variable that is not defined.
    Unknown(Placeholder),
    /// `{{` without `}}`, or a name that is not a name.
    Malformed(String),
}

/// How a literal `{{` is written in a template.
const ESCAPED_OPEN: &str = "{{{{";

/// `text` written as a template that expands to exactly `text`: every `{{`
/// doubled.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if text.contains("{{") {
        Cow::Owned(text.replace("{{", ESCAPED_OPEN))
    } else {
        Cow::Borrowed(text)
    }
}

/// Splits a template into literal text and placeholders.
fn parse(template: &str) -> Result<Vec<Result<&str, Placeholder>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if rest[open..].starts_with(ESCAPED_OPEN) {
            // The literal `{{`, written `{{{{`.
            parts.push(Ok(&rest[..open + 2]));
            rest = &rest[open + ESCAPED_OPEN.len()..];
            continue;
        }
        parts.push(Ok(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Malformed(format!(
                "`{{{{` at `{}` is not closed with `}}}}` (a literal `{{{{` is written `{{{{{{{{`)",
                truncate(&rest[open..], 20)
            )));
        };
        let name = after[..close].trim();
        if !is_name(name) {
            return Err(TemplateError::Malformed(format!(
                "`{{{{{}}}}}` is not a variable; names are letters, digits and `_` (a literal `{{{{` is written `{{{{{{{{`)",
                &after[..close]
            )));
        }
        parts.push(Err(Placeholder {
            name: name.to_owned(),
            written: rest[open..open + 2 + close + 2].to_owned(),
        }));
        rest = &after[close + 2..];
    }
    parts.push(Ok(rest));
    Ok(parts)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The names `template` refers to, in order, repeats included; `Err` when
/// it is malformed.
pub(crate) fn names(template: &str) -> Result<Vec<String>, TemplateError> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|part| part.err().map(|p| p.name))
        .collect())
}

/// Expands what `lookup` knows of `template` (no quoting), keeping every
/// other placeholder as written; returns the text and the placeholders kept.
pub(crate) fn expand_known<'a>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<(String, Vec<Placeholder>), TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut kept = Vec::new();
    for part in parse(template)? {
        match part {
            Ok(text) => out.push_str(text),
            Err(placeholder) => match lookup(&placeholder.name) {
                Some(value) => out.push_str(value),
                None => {
                    // As written, escaped so that it reads back as itself.
                    out.push_str(&placeholder.written);
                    kept.push(placeholder);
                }
            },
        }
    }
    Ok((out, kept))
}

/// Whether `name` is a valid variable name.
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands `{{name}}` with `lookup`; shell-quotes values when `shell` is set.
/// Reports every unknown variable, not only the first.
pub(crate) fn expand<'a>(
    template: &str,
    shell: bool,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, Vec<TemplateError>> {
    let parts = parse(template).map_err(|e| vec![e])?;
    let mut out = String::with_capacity(template.len());
    let mut errors = Vec::new();
    for part in parts {
        match part {
            Ok(text) => out.push_str(text),
            Err(placeholder) => match lookup(&placeholder.name) {
                Some(value) if shell => out.push_str(&quote(value)),
                Some(value) => out.push_str(value),
                None => errors.push(TemplateError::Unknown(placeholder)),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Quotes `value` for a POSIX shell: left alone when it is plainly safe,
/// otherwise in single quotes with embedded quotes escaped.
pub fn quote(value: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "dir" => Some("/var/lib/mailman"),
            "evil" => Some("x'; rm -rf / #"),
            "empty" => Some(""),
            _ => None,
        }
    }

    #[test]
    fn expands_and_quotes_in_shell_commands() {
        assert_eq!(
            expand("du -s {{dir}}", true, vars),
            Ok("du -s /var/lib/mailman".into())
        );
        assert_eq!(
            expand("echo {{ evil }}", true, vars),
            Ok(r"echo 'x'\''; rm -rf / #'".into())
        );
        assert_eq!(
            expand("test -z {{empty}}", true, vars),
            Ok("test -z ''".into())
        );
        assert_eq!(expand("{{evil}}", false, vars), Ok("x'; rm -rf / #".into()));
    }

    #[test]
    fn reports_every_unknown_variable() {
        let errors = expand("{{a}} {{dir}} {{ b }}", true, vars).unwrap_err();
        let names: Vec<_> = errors
            .iter()
            .map(|e| match e {
                TemplateError::Unknown(p) => p.written.as_str(),
                TemplateError::Malformed(m) => m.as_str(),
            })
            .collect();
        assert_eq!(names, ["{{a}}", "{{ b }}"]);
    }

    #[test]
    fn rejects_malformed_placeholders() {
        assert!(
            matches!(expand("echo {{dir", true, vars), Err(e) if matches!(e[0], TemplateError::Malformed(_)))
        );
        assert!(
            matches!(expand("echo {{a b}}", true, vars), Err(e) if matches!(e[0], TemplateError::Malformed(_)))
        );
    }

    #[test]
    fn four_braces_are_a_literal_pair() {
        assert_eq!(
            expand(
                "docker inspect -f '{{{{.State.Running}}' {{dir}}",
                true,
                vars
            ),
            Ok("docker inspect -f '{{.State.Running}}' /var/lib/mailman".into())
        );
        assert_eq!(expand("{{{{dir}}", false, vars), Ok("{{dir}}".into()));
        assert_eq!(
            expand("{{{{{{dir}}", false, vars),
            Ok("{{/var/lib/mailman".into())
        );
        assert_eq!(expand("a {{{{{{{{ b", false, vars), Ok("a {{{{ b".into()));
        // Three braces are not an escape: `{{` around `{dir`, not a name.
        assert!(matches!(
            expand("{{{dir}}}", false, vars),
            Err(e) if matches!(&e[0], TemplateError::Malformed(m) if m.contains("written `{{{{`"))
        ));
    }

    proptest::proptest! {
        /// Escaping any text gives a template that expands back to it, in
        /// plain and in shell fields (literal text is never quoted).
        #[test]
        fn escaped_text_expands_to_itself(text in "[{}a ]{0,24}") {
            let template = escape(&text);
            proptest::prop_assert_eq!(expand(&template, false, vars), Ok(text.clone()));
            proptest::prop_assert_eq!(expand(&template, true, vars), Ok(text));
        }
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        for value in [
            "plain",
            "two words",
            "it's",
            "$(id)",
            "`id`",
            "a\nb",
            "",
            "*",
            "--x",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(value)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "{value:?}");
        }
    }
}
