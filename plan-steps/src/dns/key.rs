//! TSIG keys: read from a BIND key file or an environment variable, and kept
//! out of every log line, error message and `Debug` output.

use std::fmt;
use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};
use plan_core::TsigKeySource;

/// How far apart the clocks of this machine and the server may be, in
/// seconds, before the server rejects a signature (BIND's and RFC 8945's
/// recommended value).
const FUDGE: u16 = 300;

/// A TSIG key: its name, algorithm and secret.
///
/// The secret is never shown: `Debug` prints `<redacted>` in its place and
/// no error carries it.
#[derive(Clone)]
pub struct TsigKey {
    name: Name,
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_ascii())
            .field("algorithm", &self.algorithm.as_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a TSIG key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct KeyError {
    origin: String,
    kind: KeyErrorKind,
}

impl KeyError {
    /// What went wrong.
    pub fn kind(&self) -> &KeyErrorKind {
        &self.kind
    }
}

/// What went wrong loading a TSIG key. None of them holds the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyErrorKind {
    /// The key file cannot be read (missing, unreadable).
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    /// The environment variable is not set (or not Unicode).
    #[error("the variable is not set")]
    NotSet,
    /// The text is not a key in the expected form.
    #[error("{0}")]
    Format(String),
    /// The algorithm is unknown, or known but not one hickory implements.
    /// It holds the name as written, or `None` when that did not look like an
    /// algorithm's name (it may be a misplaced secret).
    #[error(
        "algorithm {} is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)",
        .0.as_deref().map_or("as written".to_owned(), |a| format!("`{a}`"))
    )]
    UnsupportedAlgorithm(Option<String>),
    /// The secret is not base64 (it is not repeated here).
    #[error("the secret is not valid base64")]
    BadSecret,
}

/// The TSIG algorithms hickory signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    fn parse(text: &str) -> Result<Self, KeyErrorKind> {
        match text.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha384" => Ok(Self::HmacSha384),
            "hmac-sha512" => Ok(Self::HmacSha512),
            _ => Err(KeyErrorKind::UnsupportedAlgorithm(
                echo(text).map(str::to_owned),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    fn hickory(self) -> TsigAlgorithm {
        match self {
            Self::HmacSha256 => TsigAlgorithm::HmacSha256,
            Self::HmacSha384 => TsigAlgorithm::HmacSha384,
            Self::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }
}

impl TsigKey {
    /// A key from its parts; `algorithm` as BIND writes it (`hmac-sha256`).
    pub fn new(name: &str, algorithm: &str, secret: Vec<u8>) -> Result<Self, KeyErrorKind> {
        let algorithm = Algorithm::parse(algorithm)?;
        let name = key_name(name)?;
        if secret.is_empty() {
            return Err(KeyErrorKind::Format("the secret is empty".into()));
        }
        Ok(Self {
            name,
            algorithm,
            secret,
        })
    }

    /// Loads the key the plan names.
    pub fn load(source: &TsigKeySource) -> Result<Self, KeyError> {
        match source {
            TsigKeySource::File(path) => Self::from_file(path),
            TsigKeySource::Env(var) => Self::from_env(var),
        }
    }

    /// Reads a BIND key file as `tsig-keygen` writes it.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let origin = || format!("TSIG key file {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| KeyError {
            origin: origin(),
            kind: KeyErrorKind::Read(e),
        })?;
        Self::parse_key_file(&text).map_err(|kind| KeyError {
            origin: origin(),
            kind,
        })
    }

    /// Reads `algorithm:name:base64secret` (nsupdate's `-y` form, with the
    /// algorithm required) from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let origin = || format!("TSIG key variable `{var}`");
        let text = std::env::var(var).map_err(|_| KeyError {
            origin: origin(),
            kind: KeyErrorKind::NotSet,
        })?;
        Self::parse_nsupdate(&text).map_err(|kind| KeyError {
            origin: origin(),
            kind,
        })
    }

    /// Parses `algorithm:name:base64secret`.
    pub fn parse_nsupdate(text: &str) -> Result<Self, KeyErrorKind> {
        let mut parts = text.trim().splitn(3, ':');
        let (Some(algorithm), Some(name), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyErrorKind::Format(
                "expected algorithm:name:base64secret".into(),
            ));
        };
        Self::new(name, algorithm, decode_secret(secret)?)
    }

    /// Parses the text of a BIND key file: one `key "name" { algorithm ...;
    /// secret "..."; };` statement, comments allowed, other statements ignored.
    pub fn parse_key_file(text: &str) -> Result<Self, KeyErrorKind> {
        let tokens = tokenize(text)?;
        let mut keys = Vec::new();
        let mut at = 0;
        while at < tokens.len() {
            if matches!(&tokens[at].1, Token::Word(w) if w.eq_ignore_ascii_case("key")) {
                let (key, next) = key_statement(&tokens, at + 1)?;
                keys.push(key);
                at = next;
            } else {
                at = skip_statement(&tokens, at)?;
            }
        }
        match keys.len() {
            1 => Ok(keys.remove(0)),
            0 => Err(KeyErrorKind::Format("no `key` statement".into())),
            n => Err(KeyErrorKind::Format(format!(
                "{n} `key` statements; the file must hold exactly one"
            ))),
        }
    }

    /// The key's name, fully qualified.
    pub fn name(&self) -> String {
        self.name.to_ascii()
    }

    /// The algorithm, as BIND writes it.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm.as_str()
    }

    /// hickory's signer for this key.
    pub(crate) fn signer(&self) -> TSigner {
        // invariant: `TSigner::new` fails only for algorithms hickory cannot sign with,
        // and `Algorithm` holds only those it can.
        TSigner::new(
            self.secret.clone(),
            self.algorithm.hickory(),
            self.name.clone(),
            FUDGE,
        )
        .expect("hickory signs with every Algorithm")
    }
}

/// `word` if it may be shown in an error: short words of the alphabet of
/// algorithm names and keywords. Anything else may be a misplaced secret
/// (16 bytes and more are 24 base64 characters and more).
fn echo(word: &str) -> Option<&str> {
    let shown = word.len() <= 20
        && word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c.is_ascii_digit() || c == '-' || c == '.');
    shown.then_some(word)
}

fn key_name(text: &str) -> Result<Name, KeyErrorKind> {
    let invalid = || match echo(text) {
        Some(text) => KeyErrorKind::Format(format!("`{text}` is not a valid key name")),
        None => KeyErrorKind::Format("the key name is not a valid DNS name".into()),
    };
    let mut name = Name::from_ascii(text).map_err(|_| invalid())?;
    if name.is_root() {
        return Err(KeyErrorKind::Format("the key name is empty".into()));
    }
    name.set_fqdn(true);
    Ok(name)
}

fn decode_secret(text: &str) -> Result<Vec<u8>, KeyErrorKind> {
    data_encoding::BASE64
        .decode(text.trim().as_bytes())
        .map_err(|_| KeyErrorKind::BadSecret)
}

/// A token of named.conf syntax, with its line for messages (tokens
/// themselves are never quoted in errors: one of them is the secret).
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, KeyErrorKind> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            line += usize::from(c == '\n');
                            previous = c;
                        }
                        None => return Err(format_error(start, "unterminated comment")),
                    }
                }
            }
            '{' => tokens.push((line, Token::Open)),
            '}' => tokens.push((line, Token::Close)),
            ';' => tokens.push((line, Token::Semicolon)),
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => value.extend(chars.next()),
                        Some(c) => {
                            line += usize::from(c == '\n');
                            value.push(c);
                        }
                        None => return Err(format_error(start, "unterminated string")),
                    }
                }
                tokens.push((start, Token::Quoted(value)));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((line, Token::Word(word)));
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            break;
        }
    }
}

fn format_error(line: usize, what: &str) -> KeyErrorKind {
    KeyErrorKind::Format(format!("line {line}: {what}"))
}

fn last_line(tokens: &[(usize, Token)]) -> usize {
    tokens.last().map_or(1, |(line, _)| *line)
}

/// Skips a statement that is not a key: up to its `;` outside braces.
fn skip_statement(tokens: &[(usize, Token)], mut at: usize) -> Result<usize, KeyErrorKind> {
    let mut depth = 0usize;
    while let Some((line, token)) = tokens.get(at) {
        at += 1;
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format_error(*line, "unbalanced `}`"))?
            }
            Token::Semicolon if depth == 0 => return Ok(at),
            _ => {}
        }
    }
    Err(format_error(
        last_line(tokens),
        "statement without its closing `;`",
    ))
}

/// Parses `name { algorithm A; secret "S"; };` from `at`, returning the key
/// and the index after the statement.
fn key_statement(
    tokens: &[(usize, Token)],
    mut at: usize,
) -> Result<(TsigKey, usize), KeyErrorKind> {
    let eof = || format_error(last_line(tokens), "the key statement is cut short");
    let mut next = || {
        let token = tokens.get(at).ok_or_else(eof);
        at += 1;
        token
    };
    let (line, name) = next()?;
    let name = match name {
        Token::Word(name) | Token::Quoted(name) => key_name(name)?,
        _ => return Err(format_error(*line, "expected the key name after `key`")),
    };
    let (line, open) = next()?;
    if *open != Token::Open {
        return Err(format_error(*line, "expected `{` after the key name"));
    }
    let (mut algorithm, mut secret) = (None, None);
    loop {
        let (line, token) = next()?;
        let clause = match token {
            Token::Close => break,
            Token::Word(clause) => clause.to_ascii_lowercase(),
            _ => return Err(format_error(*line, "expected `algorithm`, `secret` or `}`")),
        };
        let (value_line, value) = next()?;
        let value = match value {
            Token::Word(value) | Token::Quoted(value) => value,
            _ => {
                let what = echo(&clause).map_or("it".to_owned(), |c| format!("`{c}`"));
                return Err(format_error(
                    *value_line,
                    &format!("expected a value after {what}"),
                ));
            }
        };
        match clause.as_str() {
            "algorithm" => algorithm = Some(Algorithm::parse(value)?),
            "secret" => secret = Some(decode_secret(value)?),
            _ => match echo(&clause) {
                Some(clause) => {
                    return Err(format_error(
                        *line,
                        &format!("unknown clause `{clause}` in the key"),
                    ))
                }
                None => return Err(format_error(*line, "expected `algorithm` or `secret`")),
            },
        }
        let (line, semicolon) = next()?;
        if *semicolon != Token::Semicolon {
            return Err(format_error(
                *line,
                &format!("expected `;` after the {clause}"),
            ));
        }
    }
    let (line, semicolon) = next()?;
    if *semicolon != Token::Semicolon {
        return Err(format_error(
            *line,
            "expected `;` after the key statement's `}`",
        ));
    }
    let algorithm =
        algorithm.ok_or_else(|| KeyErrorKind::Format("the key has no `algorithm`".into()))?;
    let secret = secret.ok_or_else(|| KeyErrorKind::Format("the key has no `secret`".into()))?;
    if secret.is_empty() {
        return Err(KeyErrorKind::Format("the secret is empty".into()));
    }
    Ok((
        TsigKey {
            name,
            algorithm,
            secret,
        },
        at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "qu1QUDJ3nI7mxh3sNFlyixdbeKb+2f/Dfi81M/wNgwI=";

    fn keygen_file(algorithm: &str) -> String {
        format!("key \"cutover-key\" {{\n\talgorithm {algorithm};\n\tsecret \"{SECRET}\";\n}};\n")
    }

    fn format_message(result: Result<TsigKey, KeyErrorKind>) -> String {
        match result {
            Err(KeyErrorKind::Format(message)) => message,
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn reads_what_tsig_keygen_writes() {
        for algorithm in ["hmac-sha256", "hmac-sha384", "hmac-sha512"] {
            let key = TsigKey::parse_key_file(&keygen_file(algorithm)).unwrap();
            assert_eq!(key.name(), "cutover-key.");
            assert_eq!(key.algorithm(), algorithm);
            assert_eq!(key.secret.len(), 32);
        }
    }

    #[test]
    fn key_files_may_have_comments_other_statements_and_bare_names() {
        let text = format!(
            "# made by ddns-confgen\n// and edited\n/* a\n block */ options {{ directory \"/x\"; }};\n\
             KEY ddns-key.example {{ secret \"{SECRET}\"; ALGORITHM HMAC-SHA512; }}; # done\n"
        );
        let key = TsigKey::parse_key_file(&text).unwrap();
        assert_eq!(key.name(), "ddns-key.example.");
        assert_eq!(key.algorithm(), "hmac-sha512");
    }

    #[test]
    fn key_file_errors_are_clear() {
        assert_eq!(
            format_message(TsigKey::parse_key_file("")),
            "no `key` statement"
        );
        let two = format!(
            "{}{}",
            keygen_file("hmac-sha256"),
            keygen_file("hmac-sha256")
        );
        assert_eq!(
            format_message(TsigKey::parse_key_file(&two)),
            "2 `key` statements; the file must hold exactly one"
        );
        let no_secret = "key k {\n algorithm hmac-sha256;\n};";
        assert_eq!(
            format_message(TsigKey::parse_key_file(no_secret)),
            "the key has no `secret`"
        );
        let no_semicolon = format!("key k {{\n algorithm hmac-sha256\n secret \"{SECRET}\";\n}};");
        assert_eq!(
            format_message(TsigKey::parse_key_file(&no_semicolon)),
            "line 3: expected `;` after the algorithm"
        );
        let cut = "key k { algorithm hmac-sha256;";
        assert_eq!(
            format_message(TsigKey::parse_key_file(cut)),
            "line 1: the key statement is cut short"
        );
        let unterminated = format!("key k {{\n secret \"{SECRET};\n}};");
        assert_eq!(
            format_message(TsigKey::parse_key_file(&unterminated)),
            "line 2: unterminated string"
        );
        assert!(matches!(
            TsigKey::parse_key_file(&keygen_file("hmac-md5")),
            Err(KeyErrorKind::UnsupportedAlgorithm(Some(a))) if a == "hmac-md5"
        ));
        assert!(matches!(
            TsigKey::parse_key_file(&keygen_file("hmac-sha1")),
            Err(KeyErrorKind::UnsupportedAlgorithm(_))
        ));
        let unknown_clause =
            format!("key k {{\n algorithm hmac-sha256;\n secret \"{SECRET}\";\n owner me;\n}};");
        assert_eq!(
            format_message(TsigKey::parse_key_file(&unknown_clause)),
            "line 4: unknown clause `owner` in the key"
        );
        let bad_base64 = "key k { algorithm hmac-sha256; secret \"not*base64\"; };";
        assert!(matches!(
            TsigKey::parse_key_file(bad_base64),
            Err(KeyErrorKind::BadSecret)
        ));
    }

    #[test]
    fn reads_the_nsupdate_form() {
        let key = TsigKey::parse_nsupdate(&format!("hmac-sha384:cutover-key:{SECRET}\n")).unwrap();
        assert_eq!(
            (key.name().as_str(), key.algorithm()),
            ("cutover-key.", "hmac-sha384")
        );
        assert_eq!(
            format_message(TsigKey::parse_nsupdate(&format!("cutover-key:{SECRET}"))),
            "expected algorithm:name:base64secret"
        );
        assert!(matches!(
            TsigKey::parse_nsupdate(&format!("hmac-md5:k:{SECRET}")),
            Err(KeyErrorKind::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            TsigKey::parse_nsupdate("hmac-sha256:k:%%%"),
            Err(KeyErrorKind::BadSecret)
        ));
        assert!(matches!(
            TsigKey::parse_nsupdate("hmac-sha256:k:"),
            Err(KeyErrorKind::Format(_))
        ));
    }

    #[test]
    fn missing_sources_say_where_they_looked() {
        let missing = TsigKey::from_file(Path::new("/nonexistent/cutover.key")).unwrap_err();
        assert!(
            matches!(missing.kind(), KeyErrorKind::Read(e) if e.kind() == std::io::ErrorKind::NotFound)
        );
        assert!(missing
            .to_string()
            .starts_with("TSIG key file /nonexistent/cutover.key: cannot read it: "));
        let unset = TsigKey::from_env("CUTOVER_TEST_SURELY_UNSET_TSIG_VARIABLE").unwrap_err();
        assert!(matches!(unset.kind(), KeyErrorKind::NotSet));
        assert_eq!(
            unset.to_string(),
            "TSIG key variable `CUTOVER_TEST_SURELY_UNSET_TSIG_VARIABLE`: the variable is not set"
        );
    }

    #[test]
    fn the_secret_never_shows() {
        let key = TsigKey::parse_key_file(&keygen_file("hmac-sha256")).unwrap();
        let debug = format!("{key:?} {key:#?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains("qu1QUDJ3"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>") && debug.contains("cutover-key."));
        // Malformed files whose secret is where the parser stops.
        let broken = [
            format!("key k {{ secret {SECRET} algorithm hmac-sha256; }};"),
            format!("key k {{ algorithm hmac-sha256; secret \"{SECRET}\" }};"),
            format!("key k {{ algorithm \"{SECRET}\"; }};"),
            format!("key k {{ algorithm hmac-sha256; secret \"{SECRET}!\"; }};"),
            format!("{SECRET} {{ }};"),
            format!("key k {{ {SECRET}; }};"),
            format!("key k {{ {SECRET} x; }};"),
            format!("key {SECRET} {{ }};"),
            format!("key \"{SECRET}\" {{ }};"),
            format!("hmac-sha256:k:{SECRET}!"),
        ];
        for text in &broken {
            let errors = [TsigKey::parse_key_file(text), TsigKey::parse_nsupdate(text)];
            for error in errors.into_iter().filter_map(Result::err) {
                let shown = format!("{error} {error:?}");
                assert!(!shown.contains("qu1QUDJ3"), "{shown}");
            }
        }
    }
}
