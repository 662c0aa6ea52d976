//! Length-prefixed frames: a `u32` big-endian payload length, then the payload.
//!
//! The decoder works over a caller-owned [`BytesMut`] (what tokio's `Framed` hands a codec, and
//! what the blocking and reactor drivers read into): it takes whole frames off the front and
//! leaves a partial one in place. The announced length is checked against the maximum as soon as
//! the four length bytes are there — before anything is reserved for the payload — and nothing is
//! reserved ahead of the bytes actually received, so a peer announcing 4 GiB, or 10 MB it never
//! sends, costs nothing.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// The default largest payload: 10 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 10 * 1024 * 1024;

/// The slowest a large frame may arrive once its length is known: its deadline is the stall
/// timeout plus its length at this rate. A fixed deadline cut off an honest 10 MiB frame on any
/// link slower than 8 Mbit/s, and the peer's every retry with it; at 64 KiB/s a 10 MiB frame has
/// 160 s more, and a sender trickling a byte a second still holds one connection for a bounded
/// time.
pub const MIN_FRAME_RATE: u64 = 64 * 1024;

/// A frame the stream cannot continue after: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the receiver accepts. Nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversize {
        /// The announced payload length.
        len: u64,
        /// The receiver's maximum.
        max: u32,
    },
    /// A frame was begun but not finished within its deadline — the stall timeout, plus its
    /// length at [`MIN_FRAME_RATE`] (a slow or stuck sender).
    #[error("a frame was started but not finished within {0:?}")]
    Stalled(Duration),
    /// The stream ended inside a frame.
    #[error("the stream ended {buffered} bytes into an unfinished frame")]
    Truncated {
        /// Bytes of the unfinished frame (prefix included) that had arrived.
        buffered: usize,
    },
}

/// Takes frames off the front of a byte buffer as they complete.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::BytesMut;
/// use rrt_wire::frame::FrameDecoder;
///
/// let mut decoder = FrameDecoder::new(1024, Duration::from_secs(10));
/// let mut buffer = BytesMut::from(&b"\x00\x00\x00\x02hi\x00\x00"[..]);
/// let now = Instant::now();
/// assert_eq!(decoder.decode(&mut buffer, now).unwrap().as_deref(), Some(&b"hi"[..]));
/// assert_eq!(decoder.decode(&mut buffer, now).unwrap(), None); // half a length prefix
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max: u32,
    stall_timeout: Duration,
    /// When the unfinished frame at the front of the buffer began, if there is one.
    started: Option<Instant>,
    /// The time its length allows it beyond the stall timeout, once the length is known.
    allowance: Duration,
}

impl FrameDecoder {
    /// A decoder accepting payloads up to `max` bytes, each finished within `stall_timeout` of
    /// its first byte, plus its length at [`MIN_FRAME_RATE`].
    pub fn new(max: u32, stall_timeout: Duration) -> Self {
        Self {
            max,
            stall_timeout,
            started: None,
            allowance: Duration::ZERO,
        }
    }

    /// The largest payload accepted.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Takes the next complete frame's payload off the front of `buffer`; `Ok(None)` while it is
    /// incomplete. `now` dates the start of a new partial frame and checks an old one's deadline.
    pub fn decode(
        &mut self,
        buffer: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<BytesMut>, FrameError> {
        if buffer.is_empty() {
            self.started = None;
            self.allowance = Duration::ZERO;
            return Ok(None);
        }
        let started = *self.started.get_or_insert(now);
        if buffer.len() >= HEADER_LEN {
            let len = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
            if len > self.max {
                return Err(FrameError::Oversize {
                    len: len.into(),
                    max: self.max,
                });
            }
            let total = HEADER_LEN + len as usize;
            if buffer.len() >= total {
                buffer.advance(HEADER_LEN);
                let payload = buffer.split_to(len as usize);
                self.started = (!buffer.is_empty()).then_some(now);
                self.allowance = Duration::ZERO;
                return Ok(Some(payload));
            }
            self.allowance = Duration::from_millis(u64::from(len) * 1000 / MIN_FRAME_RATE);
        }
        self.check_deadline_since(started, now)?;
        Ok(None)
    }

    /// Fails with [`FrameError::Stalled`] if an unfinished frame is past its deadline at `now`.
    pub fn check_deadline(&self, now: Instant) -> Result<(), FrameError> {
        match self.started {
            Some(started) => self.check_deadline_since(started, now),
            None => Ok(()),
        }
    }

    fn check_deadline_since(&self, started: Instant, now: Instant) -> Result<(), FrameError> {
        let allowed = self.stall_timeout + self.allowance;
        if now.saturating_duration_since(started) > allowed {
            return Err(FrameError::Stalled(allowed));
        }
        Ok(())
    }

    /// When the unfinished frame must be complete, if one is under way; a driver polls until
    /// then and calls [`FrameDecoder::decode`] to have it checked.
    pub fn deadline(&self) -> Option<Instant> {
        self.started
            .map(|started| started + self.stall_timeout + self.allowance)
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&self, buffer: &BytesMut) -> Result<(), FrameError> {
        if buffer.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: buffer.len(),
            })
        }
    }
}

/// Appends one frame (prefix and payload) to `out`.
///
/// The caller has checked `payload.len()` against the receiver's maximum, which is at most
/// `u32::MAX`.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) {
    out.reserve(HEADER_LEN + payload.len());
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn several_frames_from_one_read() {
        let mut out = BytesMut::new();
        for payload in [&b"one"[..], b"", b"three"] {
            encode_frame(payload, &mut out);
        }
        let mut decoder = FrameDecoder::new(100, TIMEOUT);
        let now = Instant::now();
        let frames: Vec<_> = std::iter::from_fn(|| decoder.decode(&mut out, now).expect("decodes"))
            .map(|frame| frame.to_vec())
            .collect();
        assert_eq!(frames, [b"one".to_vec(), vec![], b"three".to_vec()]);
        assert!(out.is_empty());
        assert_eq!(decoder.deadline(), None);
    }

    #[test]
    fn a_zero_length_frame_is_an_empty_payload() {
        let mut buffer = BytesMut::from(&[0u8, 0, 0, 0][..]);
        let mut decoder = FrameDecoder::new(100, TIMEOUT);
        let frame = decoder
            .decode(&mut buffer, Instant::now())
            .expect("decodes");
        assert_eq!(frame.as_deref(), Some(&[][..]));
    }

    #[test]
    fn a_4_gib_length_is_refused_from_the_prefix_alone() {
        let mut buffer = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME, TIMEOUT);
        assert_eq!(
            decoder.decode(&mut buffer, Instant::now()),
            Err(FrameError::Oversize {
                len: u32::MAX.into(),
                max: DEFAULT_MAX_FRAME
            })
        );
        assert!(buffer.capacity() < 64, "nothing reserved for the payload");
    }

    #[test]
    fn the_maximum_itself_is_accepted() {
        let mut buffer = BytesMut::new();
        encode_frame(&[7; 16], &mut buffer);
        let mut decoder = FrameDecoder::new(16, TIMEOUT);
        assert!(
            decoder
                .decode(&mut buffer, Instant::now())
                .expect("decodes")
                .is_some()
        );
    }

    #[test]
    fn a_frame_not_finished_in_time_stalls() {
        let mut decoder = FrameDecoder::new(100, TIMEOUT);
        let start = Instant::now();
        let mut buffer = BytesMut::from(&[0u8, 0, 0, 5, b'a'][..]);
        assert_eq!(decoder.decode(&mut buffer, start), Ok(None));
        assert_eq!(decoder.deadline(), Some(start + TIMEOUT));
        buffer.extend_from_slice(b"b");
        assert_eq!(decoder.decode(&mut buffer, start + TIMEOUT), Ok(None));
        buffer.extend_from_slice(b"c");
        let late = start + TIMEOUT + Duration::from_millis(1);
        assert_eq!(
            decoder.decode(&mut buffer, late),
            Err(FrameError::Stalled(TIMEOUT))
        );
    }

    #[test]
    fn a_large_frame_has_time_for_its_length_at_the_minimum_rate() {
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME, TIMEOUT);
        let start = Instant::now();
        // 640 KiB announced: 10 s more at 64 KiB/s.
        let mut buffer = BytesMut::from(&(640u32 * 1024).to_be_bytes()[..]);
        buffer.extend_from_slice(&[0; 1000]);
        assert_eq!(decoder.decode(&mut buffer, start), Ok(None));
        let allowed = TIMEOUT + Duration::from_secs(10);
        assert_eq!(decoder.deadline(), Some(start + allowed));
        assert_eq!(decoder.decode(&mut buffer, start + allowed), Ok(None));
        assert_eq!(
            decoder.decode(&mut buffer, start + allowed + Duration::from_millis(1)),
            Err(FrameError::Stalled(allowed))
        );
    }

    #[test]
    fn the_next_frame_gets_a_fresh_deadline() {
        let mut decoder = FrameDecoder::new(100, TIMEOUT);
        let start = Instant::now();
        let mut buffer = BytesMut::from(&[0u8, 0, 0, 1, b'a', 0][..]);
        let later = start + TIMEOUT / 2;
        assert!(
            decoder
                .decode(&mut buffer, later)
                .expect("decodes")
                .is_some()
        );
        assert_eq!(decoder.deadline(), Some(later + TIMEOUT));
    }

    #[test]
    fn end_of_stream_inside_a_frame_is_truncation() {
        let decoder = FrameDecoder::new(100, TIMEOUT);
        assert_eq!(decoder.finish(&BytesMut::new()), Ok(()));
        assert_eq!(
            decoder.finish(&BytesMut::from(&b"\x00\x00"[..])),
            Err(FrameError::Truncated { buffered: 2 })
        );
    }
}
