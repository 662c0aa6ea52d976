//! What a node shares and fetches of clipboard content besides text, and how much it keeps.
//!
//! Small representations travel inline with the clipboard update; larger ones are fetched at
//! once when at most [`ContentConfig::eager_max`] (so a screenshot is pasteable the moment it is
//! copied elsewhere) and otherwise only when something asks for them (a paste). Per-type rules,
//! first match wins, turn a type off or cap it (`image/*=off`, `text/html=1MiB`): they decide what
//! this node shares of a local copy and what it fetches; what a peer announces is kept as it was
//! announced, so every replica's history stays the same.

use std::{fmt, str::FromStr};

/// What this node shares and fetches of clipboard content, and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentConfig {
    /// Blobs at most this large are fetched as soon as they are announced; larger ones when
    /// asked for.
    pub eager_max: u64,
    /// The largest representation shared or fetched.
    pub max_size: u64,
    /// The most bytes the blob store keeps; past it, the least recently used blobs not in the
    /// current value or a pinned entry are removed.
    pub quota: u64,
    /// Per-type rules, the first that matches decides.
    pub rules: Vec<TypeRule>,
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            eager_max: 16 << 20,
            max_size: 1 << 30,
            quota: 4 << 30,
            rules: Vec::new(),
        }
    }
}

impl ContentConfig {
    /// The largest representation of type `mime` shared or fetched: `None` when the type is off.
    pub fn limit(&self, mime: &str) -> Option<u64> {
        match self.rules.iter().find(|rule| rule.matches(mime)) {
            Some(rule) => rule.max.map(|max| max.min(self.max_size)),
            None => Some(self.max_size),
        }
    }
}

/// A rule for MIME types matching a pattern (`image/png`, `image/*`, `*`): off, or capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRule {
    /// The pattern.
    pub pattern: String,
    /// The largest size shared or fetched; `None`: not at all.
    pub max: Option<u64>,
}

impl TypeRule {
    /// Whether `mime` matches (parameters after `;` are ignored: `text/plain;charset=utf-8` is
    /// `text/plain`).
    pub fn matches(&self, mime: &str) -> bool {
        let essence = mime.split(';').next().unwrap_or(mime).trim();
        match self.pattern.strip_suffix('*') {
            Some(prefix) => essence.starts_with(prefix),
            None => essence.eq_ignore_ascii_case(&self.pattern),
        }
    }
}

/// A rule that does not read as `TYPE=off|on|SIZE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not TYPE=off, TYPE=on or TYPE=SIZE (like image/*=off or text/html=1MiB)")]
pub struct BadRule(String);

impl FromStr for TypeRule {
    type Err = BadRule;

    fn from_str(text: &str) -> Result<Self, BadRule> {
        let bad = || BadRule(text.to_owned());
        let (pattern, setting) = text.split_once('=').ok_or_else(bad)?;
        if pattern.is_empty() || pattern.contains(char::is_whitespace) {
            return Err(bad());
        }
        let max = match setting {
            "off" => None,
            "on" => Some(u64::MAX),
            size => Some(parse_size(size).ok_or_else(bad)?),
        };
        Ok(Self {
            pattern: pattern.to_owned(),
            max,
        })
    }
}

impl fmt::Display for TypeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            None => write!(f, "{}=off", self.pattern),
            Some(u64::MAX) => write!(f, "{}=on", self.pattern),
            Some(max) => write!(f, "{}={max}", self.pattern),
        }
    }
}

/// A size like `512`, `64KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`…: powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_powers_of_1024() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999T"), None);
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let config = ContentConfig {
            rules: vec![
                "image/png=2MiB".parse().expect("a rule"),
                "image/*=off".parse().expect("a rule"),
            ],
            ..ContentConfig::default()
        };
        assert_eq!(config.limit("image/png"), Some(2 << 20));
        assert_eq!(config.limit("image/jpeg"), None);
        assert_eq!(config.limit("text/html"), Some(1 << 30));
        assert_eq!(config.limit("text/plain;charset=utf-8"), Some(1 << 30));
    }

    #[test]
    fn a_cap_never_exceeds_the_maximum() {
        let config = ContentConfig {
            max_size: 100,
            rules: vec!["*=on".parse().expect("a rule")],
            ..ContentConfig::default()
        };
        assert_eq!(config.limit("anything/at-all"), Some(100));
    }

    #[test]
    fn rules_that_do_not_parse_say_so() {
        for text in ["image/png", "=off", "image/png=maybe", "a b=on"] {
            assert!(text.parse::<TypeRule>().is_err(), "{text}");
        }
    }
}
