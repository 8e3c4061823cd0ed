//! How many times the pipeline copies the object of a mutated review, measured as the bytes it
//! allocates: a native mutating policy builds its changed object (one copy, its own), a patch
//! after it applies in place, the facts of the request are shared, and the final object is
//! moved into the decision. The object here carries a large annotation, so that its copies
//! dwarf everything else the pipeline allocates.

#![allow(clippy::unwrap_used)]
// A counting allocator is the one way to observe copies from outside the code that makes them.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use initguard_core::{
    FailurePolicy, MatchRules, Mode, Mutation, Outcome, Phase, Pipeline, Policy, PolicyEntry,
    PolicyError, Request,
};
use serde_json::{Value, json};

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// thread-local cell, touched without allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + new_size));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated_by(work: impl FnOnce()) -> usize {
    let before = ALLOCATED.with(Cell::get);
    work();
    ALLOCATED.with(Cell::get) - before
}

/// Adds a label to a copy of the object, as a native policy does.
#[derive(Debug)]
struct Labels;

impl Policy for Labels {
    fn mutating(&self) -> bool {
        true
    }
    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let mut object = request.object().unwrap().clone();
        object["metadata"]["labels"]["labelled"] = json!("yes");
        Ok(Outcome::with_mutation(Mutation::Object(object)))
    }
}

/// Adds an annotation by patch, as a WebAssembly policy does.
#[derive(Debug)]
struct Annotates;

impl Policy for Annotates {
    fn mutating(&self) -> bool {
        true
    }
    fn evaluate(&self, _: &Request) -> Result<Outcome, PolicyError> {
        let patch = serde_json::from_value(
            json!([{"op": "add", "path": "/metadata/annotations/patched", "value": "yes"}]),
        )
        .unwrap();
        Ok(Outcome::with_mutation(Mutation::Patch(patch)))
    }
}

fn entry(name: &str, policy: Arc<dyn Policy>) -> PolicyEntry {
    PolicyEntry {
        name: name.to_owned(),
        mode: Mode::Enforce,
        failure_policy: FailurePolicy::Fail,
        rules: MatchRules::default(),
        policy,
    }
}

const BLOB: usize = 4 << 20;

fn large_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "big", "annotations": {"blob": "x".repeat(BLOB)}, "labels": {}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    })
}

#[test]
fn a_mutated_review_copies_its_object_once_per_native_change_and_never_for_a_patch_after_it() {
    let pipeline = Pipeline::new(vec![
        entry("labels", Arc::new(Labels)),
        entry("annotates", Arc::new(Annotates)),
    ]);
    let request = Request::create(large_pod());
    let mut decision = None;
    let bytes = allocated_by(|| decision = Some(pipeline.evaluate(&request, Phase::All)));
    let decision = decision.unwrap();
    assert_eq!(decision.patch.0.len(), 2, "{:?}", decision.patch);
    assert_eq!(
        decision.mutated.unwrap()["metadata"]["annotations"]["patched"],
        "yes"
    );
    // The native policy's copy; nothing else is object-sized.
    assert!(
        bytes < BLOB * 3 / 2,
        "{bytes} bytes allocated for a {BLOB}-byte object: more than one copy"
    );
}

#[test]
fn a_patch_alone_copies_the_object_received_once() {
    let pipeline = Pipeline::new(vec![
        entry("first", Arc::new(Annotates)),
        entry("second", Arc::new(Annotates)),
    ]);
    let request = Request::create(large_pod());
    let bytes = allocated_by(|| drop(pipeline.evaluate(&request, Phase::All)));
    assert!(
        bytes < BLOB * 3 / 2,
        "{bytes} bytes allocated for a {BLOB}-byte object: more than one copy"
    );
}
