//! What reading a review costs, view by view, natively: the numbers behind the light image view
//! and the container views WASM policies get.
//!
//! `cargo bench -p initguard-core --bench views`; results are in BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use initguard_core::Review;

fn views(c: &mut Criterion) {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/bench/pod-review.json"
    ))
    .unwrap();
    let mut group = c.benchmark_group("views");
    group.bench_function("review_checked_on_receipt", |b| {
        b.iter(|| black_box(Review::from_slice(black_box(&body)).unwrap()));
    });
    group.bench_function("review_then_full_workload", |b| {
        b.iter(|| {
            let review = Review::from_slice(black_box(&body)).unwrap();
            assert!(review.request.workload().unwrap().is_some());
            review
        });
    });
    group.bench_function("review_then_images", |b| {
        b.iter(|| {
            let review = Review::from_slice(black_box(&body)).unwrap();
            assert_eq!(
                review.request.images().unwrap().unwrap().containers().len(),
                4
            );
            review
        });
    });
    // What the host does for each WASM policy's `containers()` once the built-ins have read
    // the workload: the views are built from the shared typed pod spec.
    let read = Review::from_slice(&body).unwrap().request;
    read.workload().unwrap();
    group.bench_function("container_views_of_a_read_workload", |b| {
        b.iter(|| black_box(read.container_views().unwrap()));
    });
    group.finish();
}

criterion_group!(benches, views);
criterion_main!(benches);
