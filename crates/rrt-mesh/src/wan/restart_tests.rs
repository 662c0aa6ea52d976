//! The wide-area transport is a Resilient Reactor Thread: an endpoint that cannot bind ends its
//! thread, the reactor restarts the worker with its backoff, and once the address is free the
//! endpoint comes up. Meanwhile commands are answered, never lost. And of two instances sharing
//! a state directory only the holder of `wan.lock` runs an endpoint.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::Arc,
    time::Duration,
};

use rrt_reactor::{Config, ReactorEvent, RestartPolicy, Rrt, Subscription};
use tokio::sync::oneshot;

use super::{Relays, WanCommand, WanConfig, WanEvent, WanWorker};
use crate::{identity::Identity, trust::TrustStore};

const DEADLINE: Duration = Duration::from_secs(20);

fn config(state: &std::path::Path, bind: SocketAddr) -> WanConfig {
    WanConfig {
        identity: Identity::load_or_create(state).expect("identity"),
        device: "restart".to_owned(),
        relays: Relays::Disabled,
        relay_ca: Vec::new(),
        bind,
        trust: TrustStore::new(state),
        lock: state.join("wan.lock"),
        attach: Arc::new(|_| {}),
    }
}

fn reactor(config: WanConfig) -> Rrt<WanWorker> {
    Rrt::with_config(
        move |registry: &mio::Registry| WanWorker::new(registry, config.clone()),
        Config {
            thread_name: "rrt-wan-test".to_owned(),
            capacity: 16,
            policy: RestartPolicy::default(),
        },
    )
}

async fn until<T>(
    events: &mut Subscription<WanEvent>,
    mut wanted: impl FnMut(&ReactorEvent<WanEvent>) -> Option<T>,
) -> T {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("the reactor runs");
            if let Some(found) = wanted(&event) {
                return found;
            }
        }
    })
    .await
    .expect("in time")
}

async fn running(wan: &Rrt<WanWorker>) -> bool {
    let (reply, answer) = oneshot::channel();
    wan.send(WanCommand::Status(reply)).expect("queued");
    tokio::time::timeout(DEADLINE, answer)
        .await
        .expect("answered in time")
        .expect("answered")
        .running
}

#[tokio::test]
async fn an_endpoint_that_cannot_bind_is_restarted_until_it_can() {
    let state = tempfile::tempdir().expect("state dir");
    let taken = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let address = taken.local_addr().expect("its address");
    let wan = reactor(config(state.path(), address));
    let mut events = wan.subscribe();
    until(&mut events, |event| {
        matches!(event, ReactorEvent::Restarting { .. }).then_some(())
    })
    .await;
    // A command sent while it fails is answered, by whichever generation gets it.
    assert!(!running(&wan).await);
    drop(taken);
    until(&mut events, |event| match event {
        ReactorEvent::Worker(WanEvent::Bound { address: bound }) => Some(bound.addrs.clone()),
        _ => None,
    })
    .await;
    assert!(running(&wan).await);
}

#[tokio::test]
async fn of_two_instances_of_a_host_only_the_lock_holder_runs_an_endpoint() {
    let state = tempfile::tempdir().expect("state dir");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let first = reactor(config(state.path(), any));
    let mut first_events = first.subscribe();
    until(&mut first_events, |event| {
        matches!(event, ReactorEvent::Worker(WanEvent::Bound { .. })).then_some(())
    })
    .await;
    let second = reactor(config(state.path(), any));
    let mut second_events = second.subscribe();
    assert!(running(&first).await);
    assert!(!running(&second).await, "the second waits for the lock");
    // The holder goes: the other takes over within its retry.
    drop(first_events);
    drop(first);
    until(&mut second_events, |event| {
        matches!(event, ReactorEvent::Worker(WanEvent::Bound { .. })).then_some(())
    })
    .await;
    assert!(running(&second).await);
}
