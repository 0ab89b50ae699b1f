//! Independent jobs on a few scoped threads, results in input order: for
//! the stages that do one thing per file or per stem (hash the inputs,
//! open the sources, restage the stems) and should not leave a core idle
//! while they do.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` of every item, in `items`' order, computed by up to `threads`
/// threads (the calling one included), each taking the next item in turn.
/// A panic in `f` is raised again here.
pub fn map_ordered<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut slots: Vec<Option<R>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(items.len()))
            .map(|_| scope.spawn(work))
            .collect();
        let mine = work();
        let theirs = helpers.into_iter().flat_map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        for (i, r) in mine.into_iter().chain(theirs) {
            slots[i] = Some(r);
        }
    });
    // Every index below items.len() was taken by exactly one thread.
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_the_threads() {
        let items: Vec<u64> = (0..37).collect();
        let slow_first = |&x: &u64| {
            // Early items take longest, so threads finish out of order.
            std::thread::sleep(std::time::Duration::from_micros(200 * (37 - x)));
            x * x
        };
        let want: Vec<u64> = items.iter().map(|x| x * x).collect();
        for threads in [0, 1, 2, 3, 64] {
            assert_eq!(map_ordered(&items, threads, slow_first), want, "{threads}");
        }
        assert!(map_ordered(&[] as &[u64], 4, |x| *x).is_empty());
    }

    #[test]
    #[should_panic(expected = "item 5")]
    fn a_panic_in_a_job_reaches_the_caller() {
        let items: Vec<u32> = (0..8).collect();
        map_ordered(&items, 3, |&x| {
            assert!(x != 5, "item {x}");
            x
        });
    }
}
