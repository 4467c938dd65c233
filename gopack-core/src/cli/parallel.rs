//! Several apps at once, results in the apps' order: workers take the next
//! app as they free up; the caller sees each result as soon as every app
//! before it has its own, so output is the same whatever finishes first.

use crate::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work(i)` for every `i` in `0..count` on up to `jobs` threads and
/// hands each result to `show` in index order. `show`'s first error stops
/// the start of further work (what runs finishes) and is returned.
pub(crate) fn in_order<T: Send>(
    count: usize,
    jobs: usize,
    work: impl Fn(usize) -> T + Sync,
    mut show: impl FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    if jobs <= 1 || count <= 1 {
        for index in 0..count {
            show(index, work(index))?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, T)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(count) {
            let sender = sender.clone();
            let (next, stop, work) = (&next, &stop, &work);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= count || stop.load(Ordering::SeqCst) {
                    break;
                }
                if sender.send((index, work(index))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        let mut waiting: Vec<Option<T>> = (0..count).map(|_| None).collect();
        let mut shown = 0;
        let mut failure = None;
        for (index, result) in receiver {
            waiting[index] = Some(result);
            while failure.is_none() && shown < count {
                let Some(result) = waiting[shown].take() else {
                    break;
                };
                if let Err(e) = show(shown, result) {
                    stop.store(true, Ordering::SeqCst);
                    failure = Some(e);
                }
                shown += 1;
            }
        }
        failure.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_results_in_order_whatever_finishes_first() {
        for jobs in [1, 2, 4] {
            let mut seen = Vec::new();
            in_order(
                6,
                jobs,
                |i| {
                    // The first apps take longest.
                    std::thread::sleep(std::time::Duration::from_millis((6 - i as u64) * 5));
                    i * 10
                },
                |i, value| {
                    seen.push((i, value));
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(
                seen,
                (0..6).map(|i| (i, i * 10)).collect::<Vec<_>>(),
                "jobs {jobs}"
            );
        }
    }

    #[test]
    fn runs_at_once_up_to_the_bound() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        in_order(
            8,
            3,
            |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            },
            |_, ()| Ok(()),
        )
        .unwrap();
        let most = most.load(Ordering::SeqCst);
        assert!((2..=3).contains(&most), "{most} at once");
    }

    #[test]
    fn a_failure_to_show_is_returned() {
        let err = in_order(
            4,
            2,
            |i| i,
            |i, _| {
                if i == 1 {
                    Err(crate::Error::Invalid {
                        path: "stdout".into(),
                        message: "closed".into(),
                        help: String::new(),
                    })
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }
}
