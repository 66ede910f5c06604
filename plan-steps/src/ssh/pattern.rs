//! OpenSSH host patterns: `*` and `?` wildcards, `!` negation, lists.

/// Whether `text` matches the wildcard `pattern` (`*` any run, `?` any one
/// character), ignoring ASCII case as OpenSSH does for host names.
pub(crate) fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_ascii_lowercase().chars().collect(),
        text.to_ascii_lowercase().chars().collect(),
    );
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `text` matches a list of patterns: at least one plain pattern
/// matches and no `!`-negated one does.
pub(crate) fn list<'a>(patterns: impl IntoIterator<Item = &'a str>, text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard(negated, text) => return false,
            Some(_) => {}
            None => matched |= wildcard(pattern, text),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("web*", "web1"));
        assert!(wildcard("web*", "web"));
        assert!(wildcard("*.example.com", "a.b.example.com"));
        assert!(!wildcard("*.example.com", "example.com"));
        assert!(wildcard("w?b", "WEB"));
        assert!(!wildcard("w?b", "wb"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxbyy"));
        assert!(wildcard("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
    }

    #[test]
    fn lists_with_negation() {
        assert!(list(["web*", "db1"], "db1"));
        assert!(!list(["*", "!db1"], "db1"));
        assert!(list(["*", "!db1"], "db2"));
        assert!(!list(["!db1"], "db2"), "only negations never match");
        assert!(!list([], "x"));
    }
}
