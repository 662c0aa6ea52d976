//! Every lifecycle path of a reactor, driven by a scripted worker that owns no fd: its behaviour
//! comes from commands, its creation from a script, so each path is reached on purpose.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rrt_reactor::{
    Config, Context, Control, ReactorError, ReactorEvent, RecvError, RestartCause, RestartPolicy,
    Rrt, SendError, ShutdownReason, State, Subscription, Worker,
};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Emit(u32),
    Flood(u32),
    Stop,
    Restart,
    Panic,
    TickIn(Duration),
}

/// How the next creation goes; an empty script creates successfully.
enum Creation {
    Fail,
    Panic,
}

/// (which worker instance, payload)
type Emitted = (u64, u32);

#[derive(Default)]
struct Harness {
    created: AtomicU64,
    alive: AtomicI64,
    flooded: AtomicBool,
    script: Mutex<VecDeque<Creation>>,
}

impl Harness {
    fn script(&self, creation: Creation) {
        self.script.lock().expect("script lock").push_back(creation);
    }
}

struct Scripted {
    id: u64,
    deadline: Option<Instant>,
    harness: Arc<Harness>,
}

impl Worker for Scripted {
    type Event = Emitted;
    type Command = Command;

    fn on_ready(&mut self, _: &mio::event::Event, _: &mut Context<'_, Emitted>) -> Control {
        Control::Continue
    }

    fn on_command(&mut self, command: Command, ctx: &mut Context<'_, Emitted>) -> Control {
        match command {
            Command::Emit(n) => ctx.emit((self.id, n)),
            Command::Flood(n) => {
                (0..n).for_each(|i| ctx.emit((self.id, i)));
                self.harness.flooded.store(true, Ordering::SeqCst);
            }
            Command::Stop => return Control::Stop,
            Command::Restart => return Control::Restart,
            Command::Panic => panic!("boom from worker {}", self.id),
            Command::TickIn(after) => self.deadline = Some(Instant::now() + after),
        }
        Control::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self, _: Instant, ctx: &mut Context<'_, Emitted>) -> Control {
        self.deadline = None;
        ctx.emit((self.id, u32::MAX));
        Control::Continue
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.harness.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

fn reactor_with(config: Config) -> (Rrt<Scripted>, Arc<Harness>) {
    let harness = Arc::new(Harness::default());
    let factory_harness = Arc::clone(&harness);
    let reactor = Rrt::with_config(
        move |_: &mio::Registry| {
            let next = factory_harness
                .script
                .lock()
                .expect("script lock")
                .pop_front();
            match next {
                Some(Creation::Fail) => return Err("scripted creation failure"),
                Some(Creation::Panic) => panic!("scripted creation panic"),
                None => {}
            }
            let id = factory_harness.created.fetch_add(1, Ordering::SeqCst) + 1;
            factory_harness.alive.fetch_add(1, Ordering::SeqCst);
            Ok(Scripted {
                id,
                deadline: None,
                harness: Arc::clone(&factory_harness),
            })
        },
        config,
    );
    (reactor, harness)
}

fn reactor() -> (Rrt<Scripted>, Arc<Harness>) {
    reactor_with(Config::default())
}

fn policy(policy: RestartPolicy) -> Config {
    Config {
        policy,
        ..Config::default()
    }
}

async fn next(events: &mut Subscription<Emitted>) -> ReactorEvent<Emitted> {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event within the deadline")
        .expect("no lag")
}

/// The next event the worker emitted, skipping lifecycle events.
async fn next_emitted(events: &mut Subscription<Emitted>) -> Emitted {
    loop {
        match next(events).await {
            ReactorEvent::Worker(emitted) => return emitted,
            ReactorEvent::Shutdown(reason) => panic!("unexpected shutdown: {reason:?}"),
            _ => continue,
        }
    }
}

async fn started(events: &mut Subscription<Emitted>) -> (u64, u32) {
    match next(events).await {
        ReactorEvent::Started {
            generation,
            restarts,
        } => (generation, restarts),
        other => panic!("expected Started, got {other:?}"),
    }
}

async fn shutdown(events: &mut Subscription<Emitted>) -> ShutdownReason {
    loop {
        if let ReactorEvent::Shutdown(reason) = next(events).await {
            return reason;
        }
    }
}

async fn wait_for_state(reactor: &Rrt<Scripted>, state: State) {
    let mut status = reactor.watch_status();
    tokio::time::timeout(DEADLINE, status.wait_for(|status| status.state == state))
        .await
        .expect("state reached within the deadline")
        .expect("status channel open");
}

async fn wait_until(condition: impl Fn() -> bool) {
    let give_up = Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            Instant::now() < give_up,
            "condition not met within the deadline"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn starts_on_first_subscribe() {
    let (reactor, harness) = reactor();
    assert_eq!(reactor.status().state, State::Stopped);
    assert_eq!(reactor.status().generation, 0);
    assert_eq!(harness.created.load(Ordering::SeqCst), 0);

    let mut events = reactor.subscribe();
    assert_eq!(started(&mut events).await, (1, 0));
    assert_eq!(reactor.status().state, State::Running);
    assert_eq!(harness.created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_subscriber_reuses_the_running_worker() {
    let (reactor, harness) = reactor();
    let mut first = reactor.subscribe();
    started(&mut first).await;
    let mut second = reactor.subscribe();
    assert_eq!(reactor.status().subscribers, 2);

    reactor.send(Command::Emit(7)).expect("running");
    assert_eq!(next_emitted(&mut first).await, (1, 7));
    assert_eq!(next_emitted(&mut second).await, (1, 7));
    assert_eq!(harness.created.load(Ordering::SeqCst), 1);
    assert_eq!(reactor.status().generation, 1);
}

#[tokio::test]
async fn stops_when_the_last_subscriber_drops_and_relaunches_a_new_generation() {
    let (reactor, harness) = reactor();
    let mut first = reactor.subscribe();
    started(&mut first).await;
    let second = reactor.subscribe();
    drop(first);
    assert_eq!(
        reactor.status().state,
        State::Running,
        "one subscriber left"
    );
    drop(second);
    wait_for_state(&reactor, State::Stopped).await;
    assert_eq!(harness.alive.load(Ordering::SeqCst), 0, "worker dropped");
    assert!(reactor.status().last_error.is_none());

    let mut again = reactor.subscribe();
    assert_eq!(started(&mut again).await, (2, 0));
    reactor.send(Command::Emit(1)).expect("running");
    assert_eq!(next_emitted(&mut again).await, (2, 1), "a new worker");
}

#[tokio::test]
async fn commands_are_refused_and_returned_while_stopped() {
    let (reactor, _) = reactor();
    assert_eq!(
        reactor.send(Command::Emit(1)),
        Err(SendError(Command::Emit(1)))
    );
}

#[tokio::test]
async fn worker_stop_shuts_the_reactor_down() {
    let (reactor, harness) = reactor();
    let mut events = reactor.subscribe();
    started(&mut events).await;
    reactor.send(Command::Stop).expect("running");
    assert!(matches!(
        shutdown(&mut events).await,
        ShutdownReason::Stopped
    ));
    assert_eq!(reactor.status().state, State::Stopped);
    assert_eq!(harness.alive.load(Ordering::SeqCst), 0);
    assert!(reactor.send(Command::Emit(1)).is_err());

    // Still subscribed, but stopped: the next subscriber relaunches.
    let mut again = reactor.subscribe();
    assert_eq!(started(&mut again).await, (2, 0));
}

async fn restart_once(initial_delay: Duration) {
    let config = policy(RestartPolicy::default().initial_delay(initial_delay));
    let (reactor, harness) = reactor_with(config);
    let mut events = reactor.subscribe();
    started(&mut events).await;
    reactor.send(Command::Restart).expect("running");
    match next(&mut events).await {
        ReactorEvent::Restarting {
            attempt: 1,
            delay,
            cause: RestartCause::Requested,
        } => assert_eq!(delay, initial_delay),
        other => panic!("expected Restarting, got {other:?}"),
    }
    assert_eq!(
        started(&mut events).await,
        (1, 1),
        "same generation, one restart"
    );
    reactor.send(Command::Emit(5)).expect("running");
    assert_eq!(
        next_emitted(&mut events).await,
        (2, 5),
        "the new worker answers"
    );
    assert_eq!(
        harness.alive.load(Ordering::SeqCst),
        1,
        "the old worker was dropped"
    );
    assert_eq!(reactor.status().restarts, 1);
}

#[tokio::test]
async fn worker_restart_with_a_delay() {
    restart_once(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn worker_restart_without_a_delay() {
    restart_once(Duration::ZERO).await;
}

#[tokio::test]
async fn an_exhausted_restart_budget_stops_the_reactor_with_a_typed_error() {
    let config = policy(
        RestartPolicy::default()
            .max_attempts(2)
            .initial_delay(Duration::ZERO)
            .healthy_after(Duration::from_secs(3600)),
    );
    let (reactor, harness) = reactor_with(config);
    let mut events = reactor.subscribe();
    for restarts in 0..3 {
        assert_eq!(started(&mut events).await, (1, restarts));
        reactor.send(Command::Restart).expect("running");
        if restarts < 2 {
            assert!(matches!(
                next(&mut events).await,
                ReactorEvent::Restarting { .. }
            ));
        }
    }
    match shutdown(&mut events).await {
        ShutdownReason::Failed(ReactorError::RestartBudgetExhausted {
            attempts: 2,
            last: RestartCause::Requested,
        }) => {}
        other => panic!("expected an exhausted budget, got {other:?}"),
    }
    let status = reactor.status();
    assert_eq!(status.state, State::Stopped);
    assert!(matches!(
        status.last_error,
        Some(ReactorError::RestartBudgetExhausted { .. })
    ));
    assert_eq!(harness.alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_healthy_run_refills_the_restart_budget() {
    let healthy_after = Duration::from_millis(20);
    let config = policy(
        RestartPolicy::default()
            .max_attempts(1)
            .initial_delay(Duration::ZERO)
            .healthy_after(healthy_after),
    );
    let (reactor, _) = reactor_with(config);
    let mut events = reactor.subscribe();
    for restarts in 0..4 {
        assert_eq!(started(&mut events).await, (1, restarts));
        // Outlive the health threshold (a precondition, not an assertion about time).
        tokio::time::sleep(healthy_after * 2).await;
        reactor.send(Command::Restart).expect("running");
        match next(&mut events).await {
            ReactorEvent::Restarting { attempt: 1, .. } => {}
            other => panic!("every restart should be attempt 1, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failed_creation_stops_with_a_typed_error_then_the_next_subscriber_succeeds() {
    let (reactor, harness) = reactor();
    harness.script(Creation::Fail);
    let mut events = reactor.subscribe();
    match shutdown(&mut events).await {
        ShutdownReason::Failed(ReactorError::Create(error)) => {
            assert_eq!(error.to_string(), "scripted creation failure");
        }
        other => panic!("expected a creation error, got {other:?}"),
    }
    let status = reactor.status();
    assert_eq!(status.state, State::Stopped, "never stuck in Starting");
    assert!(matches!(status.last_error, Some(ReactorError::Create(_))));

    let mut again = reactor.subscribe();
    assert_eq!(started(&mut again).await, (2, 0));
    assert!(reactor.status().last_error.is_none());
}

#[tokio::test]
async fn a_panicking_creation_stops_with_a_typed_error() {
    let (reactor, harness) = reactor();
    harness.script(Creation::Panic);
    let mut events = reactor.subscribe();
    match shutdown(&mut events).await {
        ShutdownReason::Failed(ReactorError::CreatePanicked(message)) => {
            assert_eq!(message, "scripted creation panic");
        }
        other => panic!("expected a creation panic, got {other:?}"),
    }
    assert_eq!(reactor.status().state, State::Stopped);
    let mut again = reactor.subscribe();
    assert_eq!(started(&mut again).await, (2, 0));
}

#[tokio::test]
async fn a_worker_panic_is_reported_and_the_next_subscriber_relaunches() {
    let (reactor, harness) = reactor();
    let mut events = reactor.subscribe();
    started(&mut events).await;
    reactor.send(Command::Panic).expect("running");
    match shutdown(&mut events).await {
        ShutdownReason::Failed(ReactorError::Panicked(message)) => {
            assert_eq!(message, "boom from worker 1");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(reactor.status().state, State::Stopped);
    assert_eq!(
        harness.alive.load(Ordering::SeqCst),
        0,
        "unwinding dropped it"
    );

    let mut again = reactor.subscribe();
    assert_eq!(started(&mut again).await, (2, 0));
    reactor.send(Command::Emit(3)).expect("running");
    assert_eq!(next_emitted(&mut again).await, (2, 3));
}

#[tokio::test]
async fn commands_sent_during_a_restart_reach_the_new_worker_in_order() {
    let config = policy(RestartPolicy::default().initial_delay(Duration::from_millis(50)));
    let (reactor, harness) = reactor_with(config);
    let mut events = reactor.subscribe();
    started(&mut events).await;
    // The first re-creation fails too: the commands must survive two restarts.
    harness.script(Creation::Fail);
    reactor.send(Command::Restart).expect("running");
    for n in 1..=3 {
        reactor
            .send(Command::Emit(n))
            .expect("restarting, not stopped");
    }
    for n in 1..=3 {
        assert_eq!(next_emitted(&mut events).await, (2, n));
    }
    assert_eq!(harness.created.load(Ordering::SeqCst), 2);
    assert_eq!(reactor.status().restarts, 2);
}

#[tokio::test]
async fn deadlines_call_the_worker_back() {
    let (reactor, _) = reactor();
    let mut events = reactor.subscribe();
    started(&mut events).await;
    reactor
        .send(Command::TickIn(Duration::from_millis(5)))
        .expect("running");
    assert_eq!(next_emitted(&mut events).await, (1, u32::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_subscribers_each_see_every_event_in_order() {
    const SUBSCRIBERS: usize = 50;
    const EVENTS: u32 = 200;
    let (reactor, harness) = reactor();
    let subscriptions: Vec<_> = (0..SUBSCRIBERS).map(|_| reactor.subscribe()).collect();
    // Subscribers that joined after the start did not see `Started`: wait on the status.
    wait_for_state(&reactor, State::Running).await;
    let readers: Vec<_> = subscriptions
        .into_iter()
        .map(|mut events| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < EVENTS as usize {
                    seen.push(next_emitted(&mut events).await.1);
                }
                seen
            })
        })
        .collect();
    for n in 0..EVENTS {
        reactor.send(Command::Emit(n)).expect("running");
    }
    let expected: Vec<u32> = (0..EVENTS).collect();
    for reader in readers {
        assert_eq!(reader.await.expect("reader finished"), expected);
    }
    assert_eq!(harness.created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_lagging_subscriber_learns_how_many_events_it_missed() {
    let config = Config {
        capacity: 16,
        ..Config::default()
    };
    let (reactor, harness) = reactor_with(config);
    let mut events = reactor.subscribe();
    reactor.send(Command::Flood(100)).expect("starting");
    wait_until(|| harness.flooded.load(Ordering::SeqCst)).await;
    // Sent: Started + 100 events; the channel keeps the newest 16.
    assert!(matches!(
        events.recv().await,
        Err(RecvError::Lagged { missed: 85 })
    ));
    assert_eq!(next_emitted(&mut events).await, (1, 84));
}

#[tokio::test]
async fn an_idle_reactor_does_not_wake_up() {
    let (reactor, _) = reactor();
    let mut events = reactor.subscribe();
    started(&mut events).await;
    let before = reactor.wakeups();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reactor.wakeups(), before, "no wake-ups over an idle second");

    // The counter does count: one command, at least one wake-up.
    reactor.send(Command::Emit(1)).expect("running");
    next_emitted(&mut events).await;
    assert!(reactor.wakeups() > before);
}

#[test]
fn blocking_subscribers_work_without_a_runtime() {
    let (reactor, _) = reactor();
    let mut events = reactor.subscribe();
    assert!(matches!(
        events.blocking_recv(),
        Ok(ReactorEvent::Started { generation: 1, .. })
    ));
    reactor.send(Command::Emit(9)).expect("running");
    assert!(matches!(
        events.blocking_recv(),
        Ok(ReactorEvent::Worker((1, 9)))
    ));
}
