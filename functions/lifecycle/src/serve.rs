//! `serve`: the long-polling SQS consumer (a system container on the managers, or the test
//! bed's processor). Bounded concurrency; a message being worked on stays hidden, renewed
//! while the drain goes on; on shutdown every in-flight message is released at once to
//! another consumer, so none is lost and none waits out its visibility timeout. Beside the
//! queue, the membership sweep runs on its own timer and after every completed termination.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use swarm_aws::ports::{Groups, LifecycleHooks, Queue, Received, SwarmNodes};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::processor::{Outcome, Processor};
use crate::triage::Triage;
use swarm_aws::error::error_chain;

/// How long a message that failed for a transient reason stays hidden before a retry.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// A `serve` drain has no budget of its own: the drain and launch deadlines bound it.
const NO_BUDGET: Duration = Duration::from_secs(7 * 24 * 3600);

/// Consumes `queue` until `shutdown` completes, then releases what is in flight and returns.
pub async fn serve<Q, S, H>(
    queue: Arc<Q>,
    processor: Arc<Processor<S, H>>,
    shutdown: impl Future<Output = ()>,
) where
    Q: Queue + 'static,
    S: SwarmNodes + 'static,
    H: LifecycleHooks + Groups + 'static,
{
    let config = processor.config().clone();
    let (stop, stopped) = watch::channel(false);
    let sweeper = tokio::spawn(sweeper(Arc::clone(&processor), stopped.clone()));
    // The metrics port, when asked for. One that cannot be opened is said loudly; the queue is
    // served all the same (drains matter more than their figures).
    if let Some(addr) = config.metrics_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
                let processor = Arc::clone(&processor);
                tokio::spawn(crate::metrics_port::answer(
                    listener,
                    move || processor.metrics().prometheus(),
                    stopped.clone(),
                ));
            }
            Err(error) => {
                tracing::error!(%addr, error = %error, "cannot open the metrics port: serving without it");
            }
        }
    }
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    tracing::info!(
        concurrency = config.concurrency,
        "serving the lifecycle queue"
    );
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let free = (1 + permits.available_permits()).min(10) as u8;
        let received = tokio::select! {
            () = &mut shutdown => break,
            received = queue.receive(free, config.visibility_timeout) => received,
        };
        while let Some(done) = tasks.try_join_next() {
            if let Err(panic) = done {
                tracing::error!(error = %panic, "a message handler panicked");
            }
        }
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                tracing::error!(error = %error, cause = error_chain(&error).as_deref(), "cannot receive from the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut permit = Some(permit);
        for message in messages {
            let permit = match permit.take() {
                Some(permit) => permit,
                None => Arc::clone(&permits)
                    .acquire_owned()
                    .await
                    .expect("never closed"),
            };
            let (queue, processor, stopped) =
                (Arc::clone(&queue), Arc::clone(&processor), stopped.clone());
            let span = tracing::info_span!("message", message_id = %message.id, receive_count = message.receive_count);
            tasks.spawn(
                async move {
                    handle(&*queue, &processor, &message, stopped).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }
    tracing::info!(
        in_flight = tasks.len(),
        "shutting down: releasing in-flight messages"
    );
    let _ = stop.send(true);
    while let Some(done) = tasks.join_next().await {
        if let Err(panic) = done {
            tracing::error!(error = %panic, "a message handler panicked");
        }
    }
    if let Err(panic) = sweeper.await {
        tracing::error!(error = %panic, "the sweeper panicked");
    }
    tracing::info!("stopped");
}

/// Sweeps the membership every `SWEEP_INTERVAL_SECONDS` and soon after each completed
/// termination, until `stopped`. A sweep that fails is logged; the next one looks again.
async fn sweeper<S, H>(processor: Arc<Processor<S, H>>, mut stopped: watch::Receiver<bool>)
where
    S: SwarmNodes,
    H: LifecycleHooks + Groups,
{
    let every = processor.config().sweep_every;
    loop {
        // Wait for the timer (if any), a completed termination, or the end.
        let timer = async {
            match every {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timer => {}
            () = processor.sweep_wanted.notified() => {}
            _ = stopped.changed() => return,
        }
        // Sweep: look, decide, act; it logs what it does, what it leaves alone, and its cost.
        match processor
            .sweep()
            .instrument(tracing::info_span!("sweep"))
            .await
        {
            Ok(_) => {}
            Err(error) => {
                tracing::error!(step = "sweep", error = %error, cause = error_chain(&error).as_deref(), "the sweep failed; the next one looks again");
            }
        }
    }
}

/// Handles one message to its end: deleted when finished or needing nothing, left for the
/// dead-letter queue when unreadable, shown again later when it must wait or failed.
async fn handle<Q, S, H>(
    queue: &Q,
    processor: &Processor<S, H>,
    message: &Received,
    mut stopped: watch::Receiver<bool>,
) where
    Q: Queue,
    S: SwarmNodes,
    H: LifecycleHooks + Groups,
{
    let triage = processor.triage(&message.id, &message.body);
    // The work: a hook's action driven to its end, or a drain ahead of a Spot interruption.
    let (span, work) = match &triage {
        Triage::Acknowledge { .. } => return delete(queue, message).await,
        // Not deleted: the queue's redrive policy moves it to the dead-letter queue.
        Triage::Reject(_) => return,
        Triage::Action(action) => (
            tracing::info_span!(
                "action",
                instance_id = %action.instance_id,
                asg_name = %action.group,
                hook_name = %action.hook,
            ),
            Either::Left(processor.drive(action, NO_BUDGET)),
        ),
        Triage::Spot(notice) => (
            tracing::info_span!("spot", instance_id = %notice.instance_id),
            Either::Right(processor.drain_ahead(notice, NO_BUDGET)),
        ),
    };
    async {
        let visibility = processor.config().visibility_timeout;
        let keep_hidden = async {
            loop {
                tokio::time::sleep(visibility / 2).await;
                if let Err(error) = queue.show_again(&message.receipt_handle, visibility).await {
                    tracing::warn!(error = %error, cause = error_chain(&error).as_deref(), "cannot renew the message's visibility");
                }
            }
        };
        // The guard `wait_for` returns must not live across an await: drop it in here.
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        tokio::select! {
            outcome = work => match outcome {
                Ok(Outcome::Finished(_)) => delete(queue, message).await,
                Ok(Outcome::Later(step)) => {
                    tracing::info!(step = step.name(), reason = step.reason(), "coming back later");
                    show_again(queue, message, RETRY_AFTER).await;
                }
                Err(error) => {
                    tracing::error!(error = %error, cause = error_chain(&error).as_deref(), "step failed; the message comes back in {RETRY_AFTER:?}");
                    show_again(queue, message, RETRY_AFTER).await;
                }
            },
            () = keep_hidden => {}
            () = stop => {
                // Released at once, not after its visibility timeout: the next consumer
                // re-observes and carries on where this one stopped.
                tracing::info!("released for another consumer");
                show_again(queue, message, Duration::ZERO).await;
            }
        }
    }
    .instrument(span)
    .await;
}

async fn delete<Q: Queue>(queue: &Q, message: &Received) {
    if let Err(error) = queue.delete(&message.receipt_handle).await {
        // It comes back; handling it again is harmless.
        tracing::warn!(error = %error, cause = error_chain(&error).as_deref(), "cannot delete the message");
    }
}

async fn show_again<Q: Queue>(queue: &Q, message: &Received, after: Duration) {
    if let Err(error) = queue.show_again(&message.receipt_handle, after).await {
        tracing::warn!(error = %error, cause = error_chain(&error).as_deref(), "cannot change the message's visibility");
    }
}
