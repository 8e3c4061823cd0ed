//! The engine's speed: one AdmissionReview through the built-ins, and `check` over a corpus.
//!
//! `cargo bench -p initguard --bench engine`; results and the machine are in BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use initguard::check;
use initguard::config::load_pipeline;
use initguard_core::{Phase, Review, ReviewResponse};
use serde_json::{Value, json};

/// The allocator the binary uses, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A realistic pod: two init containers (one a sidecar), two app containers, env, volumes,
/// probes, labels and annotations; about 5 KB as JSON.
fn pod(index: usize) -> Value {
    let env: Vec<Value> = (0..8)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
        .collect();
    let hardened = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}});
    let resources = json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("shop-frontend-{index}"),
            "namespace": "shop",
            "labels": {"app.kubernetes.io/name": "frontend", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "5d8c7b9f4"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/default-container": "frontend"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-frontend-5d8c7b9f4", "uid": "3f6d3c1e-7b7a-4c55-9d6e-0f1e2d3c4b5a", "controller": true}]
        },
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"name": "config", "configMap": {"name": "frontend-config"}},
                {"name": "cache", "emptyDir": {}},
                {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}
            ],
            "initContainers": [
                {"name": "wait-for-db", "image": "busybox:1.36", "command": ["sh", "-c", "for i in $(seq 1 60); do nslookup db && exit 0; sleep 2; done; exit 1"],
                 "resources": resources, "securityContext": hardened, "env": env},
                {"name": "proxy", "image": "envoyproxy/envoy:v1.31.0", "restartPolicy": "Always",
                 "ports": [{"name": "admin", "containerPort": 9901}],
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 9901}, "periodSeconds": 5},
                 "resources": resources, "securityContext": hardened,
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/envoy"}]}
            ],
            "containers": [
                {"name": "frontend", "image": "registry.example.com/shop/frontend:4.2.1",
                 "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                 "env": env,
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3, "periodSeconds": 5},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                 "securityContext": hardened,
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/frontend"}, {"name": "cache", "mountPath": "/var/cache/frontend"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]},
                {"name": "log-shipper", "image": "fluent/fluent-bit:3.1.4",
                 "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                 "securityContext": hardened,
                 "volumeMounts": [{"name": "cache", "mountPath": "/var/log/frontend"}]}
            ],
            "serviceAccountName": "frontend",
            "terminationGracePeriodSeconds": 30,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    })
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "shop-frontend-0",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod(0),
            "dryRun": false
        }
    }))
    .unwrap()
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
            let response =
                ReviewResponse::new(review.version, &review.request.uid, &decision, false);
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
                let report = check::check(&pipeline, &inputs, &mut std::io::empty());
                assert_eq!(report.summary.objects, DOCUMENTS);
                black_box(report)
            });
        });
        std::fs::remove_file(path).unwrap();
    }
    group.finish();
}

criterion_group!(benches, review, check_corpus);
criterion_main!(benches);
