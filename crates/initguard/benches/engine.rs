//! The engine's speed: one AdmissionReview through the built-ins, and `check` over a corpus.
//!
//! `cargo bench -p initguard --bench engine`; results and the machine are in BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use initguard::check;
use initguard::config::load_pipeline;
use initguard_core::{Phase, Review, ReviewResponse};
use serde_json::{Value, json};

/// The allocator the binary uses, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The realistic review shared with the load harness: a pod with two init containers (one a
/// sidecar), two app containers, env, volumes, probes, labels and annotations.
fn review_body() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bench/pod-review.json"),
    )
    .unwrap()
}

/// The review's pod, renamed, as a manifest.
fn pod(index: usize) -> Value {
    static POD: LazyLock<Value> = LazyLock::new(|| {
        let review: Value = serde_json::from_slice(&review_body()).unwrap();
        review["request"]["object"].clone()
    });
    let mut pod = POD.clone();
    pod["metadata"]["name"] = json!(format!("shop-frontend-{index}"));
    pod
}

fn review(c: &mut Criterion) {
    let pipeline = load_pipeline(None).unwrap();
    let body = review_body();
    eprintln!("review body: {} bytes", body.len());
    let mut group = c.benchmark_group("review");
    group.throughput(Throughput::Elements(1));
    group.bench_function("builtins_end_to_end", |b| {
        b.iter(|| {
            let review = Review::from_slice(black_box(&body)).unwrap();
            let decision = pipeline.evaluate(&review.request, Phase::Validate);
            let response = ReviewResponse::new(
                review.version,
                &review.request.facts.uid,
                &decision,
                false,
                100,
            );
            black_box(serde_json::to_vec(&response).unwrap())
        });
    });
    group.bench_function("builtins_evaluate_only", |b| {
        b.iter_batched(
            || Review::from_slice(&body).unwrap(),
            |review| black_box(pipeline.evaluate(&review.request, Phase::Validate)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| black_box(Review::from_slice(black_box(&body)).unwrap()));
    });
    group.finish();
}

/// Pod Security Standards alone, both levels at the newest version, on the realistic pod; the
/// pod view is read once beforehand, as the pipeline shares it between policies.
fn pod_security(c: &mut Criterion) {
    let review = Review::from_slice(&review_body()).unwrap();
    assert!(review.request.workload().unwrap().is_some());
    let mut group = c.benchmark_group("pod_security");
    group.throughput(Throughput::Elements(1));
    for level in ["baseline", "restricted"] {
        let policy = initguard_rules::builtin(
            "pod-security",
            &json!({"level": level, "version": "latest"}),
        )
        .unwrap();
        group.bench_function(level, |b| {
            b.iter(|| black_box(policy.evaluate(black_box(&review.request)).unwrap()));
        });
    }
    group.finish();
}

/// `check` over 2,000 pods in one file, in three shapes: realistic pods as YAML, the small
/// pods of the Kubernetes docs as YAML, and realistic pods as a JSON `List` (what
/// `kubectl get pods -o json` prints).
fn check_corpus(c: &mut Criterion) {
    const DOCUMENTS: usize = 2_000;
    let pipeline = load_pipeline(None).unwrap();
    let docs_example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/examples/myapp-pod-wait-for-services.yaml"),
    )
    .unwrap();
    let mut realistic_yaml = String::new();
    let mut small_yaml = String::new();
    for i in 0..DOCUMENTS {
        realistic_yaml.push_str("---\n");
        realistic_yaml.push_str(&serde_yaml_ng::to_string(&pod(i)).unwrap());
        small_yaml.push_str("---\n");
        small_yaml.push_str(&docs_example);
    }
    let json_list = json!({"apiVersion": "v1", "kind": "List", "items": (0..DOCUMENTS).map(pod).collect::<Vec<_>>()});
    let corpora = [
        ("pods_yaml_realistic", "yaml", realistic_yaml),
        ("pods_yaml_docs_example", "yaml", small_yaml),
        (
            "pods_json_list_realistic",
            "json",
            serde_json::to_string(&json_list).unwrap(),
        ),
    ];
    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(DOCUMENTS as u64));
    group.sample_size(20);
    for (name, extension, text) in corpora {
        let path = std::env::temp_dir().join(format!(
            "initguard-bench-{}-{name}.{extension}",
            std::process::id()
        ));
        std::fs::write(&path, &text).unwrap();
        eprintln!("{name}: {} bytes per document", text.len() / DOCUMENTS);
        let inputs: Vec<PathBuf> = vec![path.clone()];
        group.bench_function(name, |b| {
            b.iter(|| {
                let report = check::check(
                    &pipeline,
                    check::CheckOptions::default(),
                    &inputs,
                    &mut std::io::empty(),
                );
                assert_eq!(report.checked.summary.objects, DOCUMENTS);
                black_box(report)
            });
        });
        std::fs::remove_file(path).unwrap();
    }
    group.finish();
}

criterion_group!(benches, review, pod_security, check_corpus);
criterion_main!(benches);
