//! Reads batched across callers: many tasks each want one key read (Auto Scaling's state of
//! one instance), and one call can read many (`DescribeAutoScalingInstances` takes 50 ids).
//! One reader at a time reads every key wanted when it starts; whoever waited for it takes
//! its answer from that read. So fifty drains asking at once cost one call, not fifty, and an
//! answer is never older than the ask: a read that started before a key was wanted does not
//! answer for it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Keys wanted, read together.
pub struct Batched<K, V> {
    state: Mutex<State<K, V>>,
    /// Held by the one reader while it reads.
    reader: tokio::sync::Mutex<()>,
}

struct State<K, V> {
    /// The last ticket given: each ask takes the next.
    tickets: u64,
    /// Keys to read, each with the last ticket that asked for it.
    wanted: HashMap<K, u64>,
    /// What the last read of each key found (`None`: not in the answer), with the last
    /// ticket it answers for.
    answers: HashMap<K, (Option<V>, u64)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Batched<K, V> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                tickets: 0,
                wanted: HashMap::new(),
                answers: HashMap::new(),
            }),
            reader: tokio::sync::Mutex::new(()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Batched<K, V> {
    /// The value of `key`, read by `read` (given every key wanted at the time, it answers
    /// those it found) in this call or in one another caller started after this one asked.
    /// When a read fails, its reader gets the error and the keys are wanted again: whoever
    /// waits reads them next.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::collections::HashMap;
    /// use swarm_aws::batch::Batched;
    /// let batched: Batched<u32, u32> = Batched::default();
    /// // Finds the even keys, and answers each with its double.
    /// let read = |keys: Vec<u32>| async move {
    ///     Ok::<_, ()>(keys.into_iter().filter(|k| k % 2 == 0).map(|k| (k, 2 * k)).collect::<HashMap<_, _>>())
    /// };
    /// assert_eq!(batched.get(4, read).await, Ok(Some(8)));
    /// assert_eq!(batched.get(3, read).await, Ok(None));
    /// # });
    /// ```
    pub async fn get<F, Fut, E>(&self, key: K, read: F) -> Result<Option<V>, E>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        // Ask: this key is wanted, as of this ticket.
        let ticket = {
            let mut state = lock(&self.state);
            state.tickets += 1;
            let ticket = state.tickets;
            state.wanted.insert(key.clone(), ticket);
            ticket
        };
        // Wait for the reader's turn; a read made meanwhile may have answered this ask.
        let _reader = self.reader.lock().await;
        if let Some(answer) = self.answer(&key, ticket) {
            return Ok(answer);
        }
        // Read every key wanted now, this one among them.
        let wanted: Vec<(K, u64)> = lock(&self.state).wanted.drain().collect();
        let found = read(wanted.iter().map(|(k, _)| k.clone()).collect()).await;
        let mut state = lock(&self.state);
        match found {
            Ok(mut found) => {
                for (k, t) in wanted {
                    let value = found.remove(&k);
                    state.answers.insert(k, (value, t));
                }
            }
            Err(error) => {
                // Wanted again, but for this ask, which fails with the read.
                for (k, t) in wanted
                    .into_iter()
                    .filter(|(k, t)| !(*k == key && *t == ticket))
                {
                    let last = state.wanted.entry(k).or_insert(t);
                    *last = (*last).max(t);
                }
                return Err(error);
            }
        }
        drop(state);
        Ok(self.answer(&key, ticket).unwrap_or_default())
    }

    /// The answer to the ask of `key` with `ticket`, if a read has answered it; the last ask
    /// of a key takes its answer away (the next ask reads again).
    fn answer(&self, key: &K, ticket: u64) -> Option<Option<V>> {
        let mut state = lock(&self.state);
        let (value, answered) = state.answers.get(key)?.clone();
        if answered < ticket {
            return None;
        }
        if answered == ticket {
            state.answers.remove(key);
        }
        Some(value)
    }
}

/// A std mutex of plain maps: a panic elsewhere leaves them usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A reader that takes 50 ms, finds every key but "gone", and counts its calls and keys.
    #[derive(Clone, Default)]
    struct Reader {
        calls: Arc<AtomicUsize>,
        fail_next: Arc<AtomicUsize>,
        keys: Arc<Mutex<Vec<Vec<String>>>>,
    }

    impl Reader {
        async fn read(self, keys: Vec<String>) -> Result<HashMap<String, usize>, &'static str> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            lock(&self.keys).push(keys.clone());
            if self.fail_next.swap(0, Ordering::SeqCst) > 0 {
                return Err("throttled");
            }
            let call = self.calls.load(Ordering::SeqCst);
            Ok(keys
                .into_iter()
                .filter(|k| k != "gone")
                .map(|k| (k, call))
                .collect())
        }
    }

    #[tokio::test]
    async fn fifty_asks_at_once_cost_two_reads_and_each_gets_its_own_answer() {
        let batched: Arc<Batched<String, usize>> = Arc::default();
        let reader = Reader::default();
        let asks: Vec<_> = (0..50)
            .map(|i| {
                let (batched, reader) = (batched.clone(), reader.clone());
                tokio::spawn(async move {
                    let key = if i == 7 {
                        "gone".to_owned()
                    } else {
                        format!("i-{i}")
                    };
                    (i, batched.get(key, |keys| reader.read(keys)).await)
                })
            })
            .collect();
        for ask in asks {
            let (i, answer) = ask.await.expect("no panic");
            let answer = answer.expect("read");
            assert_eq!(answer.is_none(), i == 7, "ask {i}: {answer:?}");
        }
        // The first ask reads alone; the 49 that came while it read are read together.
        assert_eq!(reader.calls.load(Ordering::SeqCst), 2);
        let keys = lock(&reader.keys);
        assert_eq!(keys.iter().map(Vec::len).sum::<usize>(), 50);
    }

    #[tokio::test]
    async fn a_read_that_started_before_the_ask_does_not_answer_it() {
        let batched: Arc<Batched<String, usize>> = Arc::default();
        let reader = Reader::default();
        let first = {
            let (batched, reader) = (batched.clone(), reader.clone());
            tokio::spawn(async move { batched.get("a".into(), |k| reader.read(k)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Asked again while the first read is under way: answered by the next one.
        let again = batched.get("a".into(), |k| reader.clone().read(k)).await;
        assert_eq!(first.await.expect("no panic"), Ok(Some(1)));
        assert_eq!(again, Ok(Some(2)));
    }

    #[tokio::test]
    async fn an_answer_left_by_an_ask_given_up_is_never_given_to_a_later_ask() {
        let batched: Arc<Batched<String, usize>> = Arc::default();
        let reader = Reader::default();
        let ask = |key: &str| {
            let (batched, reader, key) = (batched.clone(), reader.clone(), key.to_owned());
            tokio::spawn(async move { batched.get(key, |k| reader.read(k)).await })
        };
        // Read 1 (x) under way; y and k wait for the reader, and read 2 reads them together.
        let x = ask("x");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let y = ask("y");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let k = ask("k");
        // Whoever asked k gives up (a drain that finished, a step cancelled): read 2 still
        // reads k, and its answer is left.
        tokio::time::sleep(Duration::from_millis(60)).await;
        k.abort();
        assert_eq!(x.await.expect("no panic"), Ok(Some(1)));
        assert_eq!(y.await.expect("no panic"), Ok(Some(2)));
        // Asked again later, k is read again: the answer left is older than the ask.
        let again = batched.get("k".into(), |k| reader.clone().read(k)).await;
        assert_eq!(again, Ok(Some(3)));
    }

    #[tokio::test]
    async fn a_failed_read_fails_its_reader_and_the_others_read_again() {
        let batched: Arc<Batched<String, usize>> = Arc::default();
        let reader = Reader::default();
        let slow = {
            let (batched, reader) = (batched.clone(), reader.clone());
            tokio::spawn(async move { batched.get("a".into(), |k| reader.read(k)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        reader.fail_next.store(1, Ordering::SeqCst);
        let (b, c) = tokio::join!(
            batched.get("b".into(), |k| reader.clone().read(k)),
            batched.get("c".into(), |k| reader.clone().read(k)),
        );
        assert_eq!(slow.await.expect("no panic"), Err("throttled"));
        // Both read again, together, by whichever came first.
        assert!(matches!((b, c), (Ok(Some(_)), Ok(Some(_)))), "{b:?} {c:?}");
        assert_eq!(reader.calls.load(Ordering::SeqCst), 2);
    }
}
