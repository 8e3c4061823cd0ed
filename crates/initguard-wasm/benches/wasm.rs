//! One WASM evaluation (a fresh instance from the pool plus the call) on a realistic pod review,
//! the same on two threads, and start-up with cached compiled policies.
//!
//! `cargo bench -p initguard-wasm --bench wasm`; results are in BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use initguard_core::{Policy, Review};
use initguard_wasm::build::{build_components, component_path};
use initguard_wasm::{HostConfig, ModuleSpec, WasmHost};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn components() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("policies");
    build_components(&workspace, &target).unwrap()
}

fn spec(components: &Path, name: &str, settings: serde_json::Value) -> ModuleSpec {
    ModuleSpec {
        name: name.to_owned(),
        path: component_path(components, name),
        sha256: None,
        settings,
        timeout: Duration::from_millis(250),
        memory_limit: 64 << 20,
    }
}

/// Evaluations per thread in the scaling benchmarks.
const PER_THREAD: u64 = 2_000;

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-bench-cache")
}

fn evaluation(c: &mut Criterion) {
    let components = components();
    // The optimised code alone is measured.
    let host = WasmHost::new(HostConfig {
        cache_dir: Some(cache_dir()),
        tiered: false,
        ..HostConfig::default()
    })
    .unwrap();
    let settings = json!({"registries": ["registry.example.com", "docker.io"]});
    let policy = Arc::new(
        host.load(&spec(&components, "allowed-registries", settings.clone()))
            .unwrap(),
    );
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bench/pod-review.json"),
    )
    .unwrap();
    let request = Arc::new(Review::from_slice(&body).unwrap().request);
    assert!(policy.evaluate(&request).unwrap().violations.is_empty());

    let noop = host
        .load(&spec(&components, "testing-noop", serde_json::Value::Null))
        .unwrap();

    let mut group = c.benchmark_group("wasm");
    group.throughput(Throughput::Elements(1));
    group.bench_function("allowed_registries_fresh_instance", |b| {
        b.iter(|| black_box(policy.evaluate(&request).unwrap()));
    });

    // The floor: the same request to a policy that does not read it.
    group.bench_function("noop_fresh_instance", |b| {
        b.iter(|| black_box(noop.evaluate(&request).unwrap()));
    });
    // Two threads evaluating at once: a misconfigured pool shows up as lost scaling.
    group.throughput(Throughput::Elements(2 * PER_THREAD));
    group.sample_size(20);
    group.bench_function("allowed_registries_two_threads_x2000", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..2 {
                        let (policy, request) = (Arc::clone(&policy), Arc::clone(&request));
                        scope.spawn(move || {
                            for _ in 0..PER_THREAD {
                                black_box(policy.evaluate(&request).unwrap());
                            }
                        });
                    }
                });
                total += started.elapsed();
            }
            total
        });
    });
    group.throughput(Throughput::Elements(PER_THREAD));
    group.bench_function("allowed_registries_one_thread_x2000", |b| {
        b.iter(|| {
            for _ in 0..PER_THREAD {
                black_box(policy.evaluate(&request).unwrap());
            }
        });
    });
    group.finish();

    // What a second WASM policy adds to a review: each iteration reads the review afresh, as
    // the server does, so the first policy pays for the pod spec the second then shares. The
    // second is the same module with the same settings, so that its own work is the first's.
    let again = host
        .load(&spec(&components, "allowed-registries", settings.clone()))
        .unwrap();
    let mut group = c.benchmark_group("wasm_per_review");
    group.bench_function("read_review", |b| {
        b.iter(|| black_box(Review::from_slice(black_box(&body)).unwrap()));
    });
    group.bench_function("read_review_then_one_policy", |b| {
        b.iter(|| {
            let review = Review::from_slice(black_box(&body)).unwrap();
            black_box(policy.evaluate(&review.request).unwrap())
        });
    });
    group.bench_function("read_review_then_two_policies", |b| {
        b.iter(|| {
            let review = Review::from_slice(black_box(&body)).unwrap();
            black_box(policy.evaluate(&review.request).unwrap());
            black_box(again.evaluate(&review.request).unwrap())
        });
    });
    group.finish();
}

/// Start-up: a new engine loading ten policies whose compiled code is in the disk cache.
fn startup(c: &mut Criterion) {
    let components = components();
    let specs: Vec<ModuleSpec> = (0..10)
        .map(|i| match i % 3 {
            0 => spec(
                &components,
                "allowed-registries",
                json!({"registries": [format!("registry-{i}.example.com")]}),
            ),
            1 => spec(
                &components,
                "require-image-digest",
                json!({"exempt": [format!("team-{i}/")]}),
            ),
            _ => spec(&components, "default-init-resources", json!({})),
        })
        .collect();
    // Fill the disk cache once.
    let warm = WasmHost::new(HostConfig {
        cache_dir: Some(cache_dir()),
        ..HostConfig::default()
    })
    .unwrap();
    for spec in &specs {
        warm.load(spec).unwrap();
    }
    drop(warm);
    let mut group = c.benchmark_group("wasm");
    group.sample_size(20);
    group.bench_function("startup_engine_and_10_cached_policies", |b| {
        b.iter(|| {
            let host = WasmHost::new(HostConfig {
                cache_dir: Some(cache_dir()),
                ..HostConfig::default()
            })
            .unwrap();
            let loaded: Vec<_> = specs.iter().map(|spec| host.load(spec).unwrap()).collect();
            black_box((host, loaded))
        });
    });
    group.finish();
}

criterion_group!(benches, evaluation, startup);
criterion_main!(benches);
