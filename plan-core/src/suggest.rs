//! "Did you mean": the known name nearest to a mistyped one.

/// The candidate closest to `name` by edit distance, if close enough to be a
/// typo: what every "did you mean" suggests.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

/// The help that offers `near`, the name [`closest`] found, in place of a
/// mistyped one: "did you mean `near`?", then `more` when there is more to say.
pub(crate) fn did_you_mean(near: &str, more: &str) -> String {
    if more.is_empty() {
        format!("did you mean `{near}`?")
    } else {
        format!("did you mean `{near}`? {more}")
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    // Optimal string alignment: a swap of two neighbours counts as one edit,
    // the commonest typo ("hodl" for "hold").
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_target() {
        assert_eq!(
            closest("sodum", ["sodium", "fermium"].into_iter()),
            Some("sodium")
        );
        assert_eq!(closest("xyz", ["sodium", "fermium"].into_iter()), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("hodl", "hold"), 1);
        assert_eq!(closest("dri", ["dir", "demo_dir"].into_iter()), Some("dir"));
    }

    #[test]
    fn the_question_comes_first() {
        assert_eq!(did_you_mean("dir", ""), "did you mean `dir`?");
        assert_eq!(
            did_you_mean("dir", "Or define it."),
            "did you mean `dir`? Or define it."
        );
    }
}
