//! What reading a review costs, view by view, natively: the typed pod template, the
//! container views WASM policies get, and their settings.
//!
//! `cargo bench -p initguard-core --bench views`; results are in BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use initguard_core::Review;

/// The settings of `allowed-registries`, for the settings benchmark.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Settings {
    registries: Vec<String>,
    #[serde(default)]
    app_containers: bool,
}

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
    // What the host does for each WASM policy's `containers()` once the built-ins have read
    // the workload: the views are built from the shared typed pod spec.
    let read = Review::from_slice(&body).unwrap().request;
    read.workload().unwrap();
    group.bench_function("container_views_of_a_read_workload", |b| {
        b.iter(|| black_box(read.container_views().unwrap()));
    });
    group.finish();

    // Settings as a WASM policy reads them each evaluation (from the typed tree the host
    // converts once) against reading the same settings from JSON text, as 0.1 policies did.
    let text = r#"{"registries": ["registry.example.com", "docker.io"]}"#;
    let tree =
        initguard_core::tree::Tree::from(&serde_json::from_str::<serde_json::Value>(text).unwrap());
    let mut group = c.benchmark_group("settings");
    group.bench_function("from_tree", |b| {
        b.iter(|| black_box(black_box(&tree).deserialize::<Settings>().unwrap()));
    });
    group.bench_function("from_json_text", |b| {
        b.iter(|| black_box(serde_json::from_str::<Settings>(black_box(text)).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, views);
criterion_main!(benches);
