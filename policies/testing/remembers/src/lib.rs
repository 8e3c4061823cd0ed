//! Tries to carry state from one evaluation to the next, for the isolation test: it counts its
//! evaluations in a static, keeps the request's name in a static buffer, and leaves a mark in
//! a heap allocation it leaks, then reports, as warnings, whatever of these it found from
//! before. In initguard's fresh instances it must find nothing, every time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use initguard_policy::{Error, Outcome, Policy, Request, Violation, export_policy};

static EVALUATIONS: AtomicU32 = AtomicU32::new(0);
static LAST_NAME: Mutex<String> = Mutex::new(String::new());
static MARK: Mutex<Option<&'static [u8]>> = Mutex::new(None);

pub struct Remembers;

impl Policy for Remembers {
    type Settings = ();

    fn evaluate(request: &Request<'_>, (): &()) -> Result<Outcome, Error> {
        let mut found = Vec::new();
        let before = EVALUATIONS.fetch_add(1, Ordering::Relaxed);
        if before > 0 {
            found.push(format!("{before} evaluations before this one"));
        }
        let mut last = LAST_NAME.lock().unwrap_or_else(|e| e.into_inner());
        if !last.is_empty() {
            found.push(format!("the last request was for {last:?}"));
        }
        *last = request.name();
        let mut mark = MARK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mark) = *mark {
            found.push(format!("a mark of {} bytes", mark.len()));
        }
        *mark = Some(Vec::leak(vec![0xA5; 64 * 1024]));
        let warnings = found
            .into_iter()
            .map(|what| Violation::object("MEM-001", format!("found {what}")))
            .collect();
        Ok(Outcome::default().and_warnings(warnings))
    }
}

export_policy!(Remembers);
