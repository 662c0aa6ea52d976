//! Pastes of a representation offered as [`Source::Later`], sans IO: which request to publish,
//! who waits for its answer, and when to give up on it.
//!
//! ```text
//!  program pastes ─▶ ask(mime) ─▶ Publish(request) ──▶ ClipboardEvent::Wanted
//!  another pastes ─▶ ask(mime) ─▶ Wait (joins the open request)
//!                    provide(request, source) ◀─────── ClipboardCommand::Provide
//!                      └▶ every waiter, and the source kept for later pastes of mime
//!                    expire(now): requests open for LATER_TIMEOUT, with their waiters
//!                    clear(): a new value or lost ownership; every waiter
//! ```
//!
//! A waiter is whatever the adapter answers a paste through (an X11 request, a Wayland pipe).
//! Request numbers are unique in the process, so an answer meant for an adapter that has since
//! restarted is never taken for a new request.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::Source;

/// How long a paste waits for [`ClipboardCommand::Provide`](crate::ClipboardCommand::Provide).
pub(crate) const LATER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most pastes waiting at once; more are refused, so a program asking in a loop cannot make
/// the adapter hold unbounded state.
const MAX_WAITERS: usize = 64;

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// What to do with a paste of a [`Source::Later`] type.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Asked<W> {
    /// Publish [`ClipboardEvent::Wanted`](crate::ClipboardEvent::Wanted) for this request.
    Publish(u64),
    /// It waits for a request already published.
    Wait,
    /// Its bytes were provided before: serve them.
    Serve(W, Source),
    /// Too many pastes wait already: refuse it.
    Refuse(W),
}

/// An open request.
#[derive(Debug)]
struct Open<W> {
    mime: String,
    waiters: Vec<W>,
    until: Instant,
}

/// The pastes waiting for [`Source::Later`] types of the value the adapter owns.
#[derive(Debug)]
pub(crate) struct Later<W> {
    open: HashMap<u64, Open<W>>,
    /// Sources provided for each type, kept for later pastes until the value changes.
    provided: HashMap<String, Source>,
}

impl<W> Default for Later<W> {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            provided: HashMap::new(),
        }
    }
}

impl<W> Later<W> {
    /// A program pastes `mime`, answered through `waiter`.
    pub(crate) fn ask(&mut self, mime: &str, waiter: W, now: Instant) -> Asked<W> {
        if let Some(source) = self.provided.get(mime) {
            return Asked::Serve(waiter, source.clone());
        }
        if self
            .open
            .values()
            .map(|open| open.waiters.len())
            .sum::<usize>()
            >= MAX_WAITERS
        {
            tracing::warn!(mime, "too many pastes are waiting for the mesh; refused");
            return Asked::Refuse(waiter);
        }
        if let Some(open) = self.open.values_mut().find(|open| open.mime == mime) {
            open.waiters.push(waiter);
            return Asked::Wait;
        }
        let request = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        self.open.insert(
            request,
            Open {
                mime: mime.to_owned(),
                waiters: vec![waiter],
                until: now + LATER_TIMEOUT,
            },
        );
        Asked::Publish(request)
    }

    /// The answer to `request`: its waiters and the source to serve them from (`None`: refuse
    /// them), or nothing for a request that is not open.
    pub(crate) fn provide(
        &mut self,
        request: u64,
        source: Option<Source>,
    ) -> Option<(Vec<W>, Option<Source>)> {
        let open = self.open.remove(&request)?;
        let source = source.filter(|source| *source != Source::Later);
        if let Some(source) = &source {
            self.provided.insert(open.mime, source.clone());
        }
        Some((open.waiters, source))
    }

    /// When the oldest open request is given up.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.open.values().map(|open| open.until).min()
    }

    /// Gives up the requests open since [`LATER_TIMEOUT`] before `now`: their types and waiters.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(String, Vec<W>)> {
        let expired: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, open)| open.until <= now)
            .map(|(&request, _)| request)
            .collect();
        expired
            .into_iter()
            .filter_map(|request| self.open.remove(&request))
            .map(|open| (open.mime, open.waiters))
            .collect()
    }

    /// The value changed or is no longer ours: every waiter, to be refused, and nothing kept.
    pub(crate) fn clear(&mut self) -> Vec<W> {
        self.provided.clear();
        self.open
            .drain()
            .flat_map(|(_, open)| open.waiters)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(asked: Asked<u32>) -> u64 {
        match asked {
            Asked::Publish(request) => request,
            other => panic!("expected a request to publish, got {other:?}"),
        }
    }

    #[test]
    fn pastes_of_a_type_share_one_request_and_its_answer_serves_them_and_later_ones() {
        let now = Instant::now();
        let mut later = Later::default();
        let png = published(later.ask("image/png", 1, now));
        assert_eq!(later.ask("image/png", 2, now), Asked::Wait);
        let html = published(later.ask("text/html", 3, now));
        assert_ne!(png, html);
        let bytes = Source::Bytes(b"png".as_slice().into());
        assert_eq!(
            later.provide(png, Some(bytes.clone())),
            Some((vec![1, 2], Some(bytes.clone())))
        );
        assert_eq!(later.provide(png, None), None, "answered once");
        assert_eq!(later.ask("image/png", 4, now), Asked::Serve(4, bytes));
        assert_eq!(
            later.deadline(),
            Some(now + LATER_TIMEOUT),
            "html still open"
        );
    }

    #[test]
    fn a_refusal_is_not_kept_and_later_is_no_answer() {
        let now = Instant::now();
        let mut later = Later::default();
        let first = published(later.ask("image/png", 1, now));
        assert_eq!(later.provide(first, None), Some((vec![1], None)));
        let second = published(later.ask("image/png", 2, now));
        assert_eq!(
            later.provide(second, Some(Source::Later)),
            Some((vec![2], None))
        );
        published(later.ask("image/png", 3, now));
    }

    #[test]
    fn requests_expire_after_the_timeout_and_clear_hands_back_every_waiter() {
        let now = Instant::now();
        let mut later = Later::default();
        published(later.ask("image/png", 1, now));
        let html = published(later.ask("text/html", 2, now + Duration::from_secs(10)));
        assert!(
            later
                .expire(now + LATER_TIMEOUT - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            later.expire(now + LATER_TIMEOUT),
            [("image/png".to_owned(), vec![1])]
        );
        assert_eq!(later.deadline(), Some(now + Duration::from_secs(40)));
        later.provide(html, Some(Source::Bytes(b"<b>".as_slice().into())));
        published(later.ask("text/plain", 3, now));
        assert_eq!(later.clear(), [3]);
        assert_eq!(later.deadline(), None);
        published(later.ask("text/html", 4, now));
    }

    #[test]
    fn too_many_waiters_are_refused() {
        let now = Instant::now();
        let mut later = Later::default();
        for waiter in 0..MAX_WAITERS as u32 {
            later.ask("image/png", waiter, now);
        }
        assert_eq!(later.ask("image/png", 99, now), Asked::Refuse(99));
    }
}
