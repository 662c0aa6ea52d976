//! A simulator's sizes and seeds, from the environment.

/// The number in environment variable `name`, if it is set; a value that is not one stops the
/// run with a message naming it.
pub(crate) fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}
