//! Byte spans for values the user wrote.
//!
//! ron 0.12 has no spanned values, but a `&RawValue` borrowed from the input is
//! a slice of the input itself, so its address minus the input's address is its
//! byte offset. [`Spanned<T>`] deserializes a borrowed `RawValue`, records that
//! range and then parses the slice again as `T`. Nested spanned values keep
//! borrowing from the same input, so their offsets stay absolute.
//!
//! The input's address is known only to the loader, so it is kept in a
//! thread-local for the duration of one parse ([`ParseScope`]).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer};

/// A byte range in the plan file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    /// A span from `offset` covering `len` bytes.
    pub fn new(offset: usize, len: usize) -> Self {
        Span { offset, len }
    }

    /// The byte offset one past the end.
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.offset, span.len).into()
    }
}

/// A value and the place in the plan file it came from.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// A parse error found inside a spanned value, with its absolute position.
///
/// serde errors carry only a message, so the precise inner error is stashed
/// here and preferred by the loader over the less precise outer one.
#[derive(Clone, Debug)]
pub(crate) struct InnerError {
    pub message: String,
    pub span: Span,
}

thread_local! {
    static BASE: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
    static INNER_ERROR: RefCell<Option<InnerError>> = const { RefCell::new(None) };
}

/// Sets the input whose slices [`Spanned`] values are measured against, for
/// as long as the scope lives.
pub(crate) struct ParseScope {
    previous: Option<(usize, usize)>,
}

impl ParseScope {
    pub fn enter(source: &str) -> Self {
        let previous = BASE.with(|b| b.replace(Some((source.as_ptr() as usize, source.len()))));
        INNER_ERROR.with(|e| e.borrow_mut().take());
        ParseScope { previous }
    }

    /// The innermost precise error recorded during this parse, if any.
    pub fn take_inner_error(&self) -> Option<InnerError> {
        INNER_ERROR.with(|e| e.borrow_mut().take())
    }
}

impl Drop for ParseScope {
    fn drop(&mut self) {
        BASE.with(|b| b.set(self.previous));
    }
}

/// The absolute span of `slice`, which must point into the current input.
fn span_of(slice: &str) -> Span {
    let Some((base, len)) = BASE.with(Cell::get) else {
        return Span::default();
    };
    let start = slice.as_ptr() as usize;
    match start.checked_sub(base) {
        Some(offset) if offset + slice.len() <= len => Span::new(offset, slice.len()),
        _ => Span::default(),
    }
}

/// Byte offset within `text` of a 1-based line and column (columns count chars).
pub(crate) fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (index, l) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let within: usize = l
                .chars()
                .take(col.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + within;
        }
        offset += l.len();
    }
    text.len()
}

/// The ron options every plan is read with: `Some(..)` may be left out.
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .with_recursion_limit(64)
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &'de ron::value::RawValue = Deserialize::deserialize(deserializer)?;
        // `trim` drops whitespace and comments on both sides of the value.
        let text = raw.trim().get_ron();
        let span = span_of(text);
        match ron_options().from_str::<T>(text) {
            Ok(value) => Ok(Spanned { value, span }),
            Err(error) => {
                let start = offset_of(text, error.span.start.line, error.span.start.col);
                let end = offset_of(text, error.span.end.line, error.span.end.col).max(start);
                let inner = InnerError {
                    message: error.code.to_string(),
                    span: Span::new(span.offset + start, end - start),
                };
                // Keep the innermost error: it is recorded first.
                INNER_ERROR.with(|e| {
                    let mut slot = e.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(inner);
                    }
                });
                Err(de::Error::custom(error.code))
            }
        }
    }
}

/// A RON map `{ "key": value, ... }` kept in file order, with the span of each
/// key, so that duplicate keys can be reported rather than silently merged.
#[derive(Clone, Debug)]
pub(crate) struct SpannedMap<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for SpannedMap<T> {
    fn default() -> Self {
        SpannedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SpannedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for MapVisitor<T> {
            type Value = SpannedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map like { \"name\": value }")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(SpannedMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Outer {
        name: Spanned<String>,
        list: Vec<Spanned<u32>>,
    }

    #[test]
    fn spans_point_at_the_values() {
        let text = "Outer(\n  name: /* c */ \"abc\",\n  list: [1, 22],\n)";
        let scope = ParseScope::enter(text);
        let outer: Outer = ron_options().from_str(text).expect("parses");
        drop(scope);
        let s = outer.name.span;
        assert_eq!(&text[s.offset..s.end()], "\"abc\"");
        let s = outer.list[1].span;
        assert_eq!(&text[s.offset..s.end()], "22");
    }

    #[test]
    fn inner_errors_are_absolute() {
        let text = "Outer(name: \"a\", list: [1, \"x\"])";
        let scope = ParseScope::enter(text);
        let result = ron_options().from_str::<Outer>(text);
        assert!(result.is_err());
        let inner = scope.take_inner_error().expect("recorded");
        assert_eq!(&text[inner.span.offset..inner.span.offset + 1], "\"");
    }

    #[test]
    fn offsets_from_line_and_column() {
        let text = "ab\ncdé\nf";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 3), 5);
        assert_eq!(offset_of(text, 3, 1), 8);
        assert_eq!(offset_of(text, 9, 1), text.len());
    }
}
