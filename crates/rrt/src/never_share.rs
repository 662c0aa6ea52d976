//! `--never-share RULE`: text this daemon never puts on the mesh — not from its desktop's
//! clipboard, not from `rrt clip copy` — so it is neither sent to peers nor written to any
//! history. Rules: `private-keys` (a PEM or OpenSSH private key block, a PuTTY key file),
//! `card-numbers` (13–19 digits, spaces or dashes between groups allowed, with a card network's
//! prefix and a valid Luhn check digit), `regex:PATTERN` (Rust regex syntax), or `off` (none).
//!
//! Both built-in rules are on by default: a private key or a card number copied to paste into a
//! form on this machine should not land on disk on every device, and the rules rarely match
//! anything else (the markers of a key block; a network's prefix and a check digit, which one
//! random number in ten passes, with a prefix narrowing it further). A value that is filtered
//! is logged (its rule, never its text), so a surprised user can see why.

use std::{str::FromStr, sync::Arc};

/// One rule.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    PrivateKeys,
    CardNumbers,
    Pattern(regex::Regex),
    /// No rule at all (`off`): given alone, it turns the defaults off.
    Off,
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(rule: &str) -> Result<Self, String> {
        match rule {
            "private-keys" => Ok(Self::PrivateKeys),
            "card-numbers" => Ok(Self::CardNumbers),
            "off" => Ok(Self::Off),
            _ => match rule.strip_prefix("regex:") {
                Some(pattern) => regex::Regex::new(pattern)
                    .map(Self::Pattern)
                    .map_err(|error| format!("not a regular expression: {error}")),
                None => {
                    Err("a rule is private-keys, card-numbers, regex:PATTERN or off".to_owned())
                }
            },
        }
    }
}

impl Rule {
    fn name(&self) -> String {
        match self {
            Self::PrivateKeys => "private-keys".to_owned(),
            Self::CardNumbers => "card-numbers".to_owned(),
            Self::Pattern(pattern) => format!("regex:{pattern}"),
            Self::Off => "off".to_owned(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Self::PrivateKeys => private_key(text),
            Self::CardNumbers => card_number(text),
            Self::Pattern(pattern) => pattern.is_match(text),
            Self::Off => false,
        }
    }
}

/// The daemon's rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct NeverShare(Arc<Vec<Rule>>);

impl NeverShare {
    pub(crate) fn new(rules: Vec<Rule>) -> Self {
        Self(Arc::new(rules))
    }

    /// The first rule `text` matches, by name: it must not be shared.
    pub(crate) fn matching(&self, text: &str) -> Option<String> {
        self.0
            .iter()
            .find(|rule| rule.matches(text))
            .map(Rule::name)
    }
}

/// A private key block: PEM (`-----BEGIN … PRIVATE KEY-----`, OpenSSH's included) or a PuTTY
/// key file.
fn private_key(text: &str) -> bool {
    text.contains("PuTTY-User-Key-File-")
        || text.match_indices("-----BEGIN ").any(|(at, _)| {
            text[at..]
                .lines()
                .next()
                .is_some_and(|line| line.trim_end().ends_with("PRIVATE KEY-----"))
        })
}

/// A payment card number somewhere in `text`: 13–19 digits, single spaces or dashes allowed
/// between them, not part of a longer run of digits, with a card network's prefix and a valid
/// Luhn check digit.
fn card_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_digit() || (start > 0 && bytes[start - 1].is_ascii_digit()) {
            start += 1;
            continue;
        }
        // The run from here: digits, with single separators between them.
        let mut digits = Vec::new();
        let mut at = start;
        while at < bytes.len() && digits.len() <= 19 {
            match bytes[at] {
                digit @ b'0'..=b'9' => digits.push(digit - b'0'),
                b' ' | b'-'
                    if at + 1 < bytes.len()
                        && bytes[at + 1].is_ascii_digit()
                        && bytes[at - 1].is_ascii_digit() => {}
                _ => break,
            }
            at += 1;
        }
        if (13..=19).contains(&digits.len()) && network_prefix(&digits) && luhn(&digits) {
            return true;
        }
        start = at.max(start + 1);
    }
    false
}

/// Whether `digits` start as a card network's numbers do (Visa, Mastercard, American Express,
/// Discover, JCB, Diners Club).
fn network_prefix(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits
            .iter()
            .take(n)
            .fold(0u32, |value, digit| value * 10 + u32::from(*digit))
    };
    let (one, two, three, four) = (prefix(1), prefix(2), prefix(3), prefix(4));
    one == 4
        || (51..=55).contains(&two)
        || (2221..=2720).contains(&four)
        || two == 34
        || two == 37
        || four == 6011
        || (644..=649).contains(&three)
        || two == 65
        || (3528..=3589).contains(&four)
        || two == 36
        || two == 38
        || (300..=305).contains(&three)
}

/// The Luhn check: every second digit from the right doubled, the sum a multiple of 10.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            let digit = u32::from(*digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> NeverShare {
        NeverShare::new(vec![Rule::PrivateKeys, Rule::CardNumbers])
    }

    #[test]
    fn private_keys_are_never_shared_and_public_ones_are() {
        let rules = defaults();
        for key in [
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "note:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "PuTTY-User-Key-File-3: ssh-ed25519\n",
        ] {
            assert_eq!(
                rules.matching(key).as_deref(),
                Some("private-keys"),
                "{key}"
            );
        }
        for public in [
            "-----BEGIN PUBLIC KEY-----\nMIIB\n",
            "-----BEGIN CERTIFICATE-----",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host",
            "the words PRIVATE KEY in a sentence",
        ] {
            assert_eq!(rules.matching(public), None, "{public}");
        }
    }

    #[test]
    fn card_numbers_are_found_in_text_and_other_numbers_are_not() {
        let rules = defaults();
        for card in [
            "4111 1111 1111 1111",
            "pay with 5500-0000-0000-0004 please",
            "378282246310005",
            "6011111111111117",
            "4111111111111111\n",
        ] {
            assert_eq!(
                rules.matching(card).as_deref(),
                Some("card-numbers"),
                "{card}"
            );
        }
        for other in [
            "4111 1111 1111 1112",        // fails the check digit
            "1234 5678 9012 3456",        // no network starts so
            "+1 555 0100 2000",           // a phone number
            "41111111111111111111111",    // a longer run of digits
            "2026-12-03 16:04:05",        // a date
            "order 4111  1111 1111 1111", // two spaces: not one number
        ] {
            assert_eq!(rules.matching(other), None, "{other}");
        }
    }

    #[test]
    fn rules_parse_and_off_matches_nothing() {
        let pattern: Rule = "regex:^otp:\\d{6}$".parse().expect("a rule");
        let rules = NeverShare::new(vec![pattern]);
        assert_eq!(
            rules.matching("otp:123456").as_deref(),
            Some("regex:^otp:\\d{6}$")
        );
        assert_eq!(rules.matching("otp:12345"), None);
        assert!("regex:(".parse::<Rule>().is_err());
        assert!("passwords".parse::<Rule>().is_err());
        let off = NeverShare::new(vec!["off".parse().expect("off")]);
        assert_eq!(off.matching("4111 1111 1111 1111"), None);
    }
}
