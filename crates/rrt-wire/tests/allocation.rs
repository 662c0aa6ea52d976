//! A 4 GiB length prefix is refused without allocating: measured with a counting allocator, in a
//! test binary of its own so nothing else allocates meanwhile.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use bytes::BytesMut;
use rrt_wire::frame::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn huge_length_prefixes_allocate_nothing() {
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME, Duration::from_secs(10));
    let now = Instant::now();
    let mut four_gib = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
    let mut just_over = BytesMut::from(&(DEFAULT_MAX_FRAME + 1).to_be_bytes()[..]);
    let mut announced_not_sent = BytesMut::from(&DEFAULT_MAX_FRAME.to_be_bytes()[..]);

    let before = ALLOCATED.load(Ordering::SeqCst);
    let refused = decoder.decode(&mut four_gib, now);
    let also_refused = decoder.decode(&mut just_over, now);
    let waiting = FrameDecoder::new(DEFAULT_MAX_FRAME, Duration::from_secs(10))
        .decode(&mut announced_not_sent, now);
    let allocated = ALLOCATED.load(Ordering::SeqCst) - before;

    assert!(matches!(refused, Err(FrameError::Oversize { .. })));
    assert!(matches!(also_refused, Err(FrameError::Oversize { .. })));
    assert!(matches!(waiting, Ok(None)));
    assert_eq!(allocated, 0, "bytes allocated while refusing or waiting");
}
