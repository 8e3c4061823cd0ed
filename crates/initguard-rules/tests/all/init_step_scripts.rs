//! The injected steps' scripts, run under /bin/sh with stand-in tools on PATH: they succeed,
//! retry, give up within their bound, and say why.
//!
//! Each test injects a step into a pod, takes the container's script and environment as the
//! kubelet would run them (pod facts filled in as the downward API would), points the paths at
//! a scratch directory, and runs it with stand-ins for nslookup, nc, wget and git.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use initguard_core::{Mutation, Policy, Request};
use initguard_rules::init_steps::InitSteps;
use serde_json::{Value, json};

/// The init containers the policy injects for `annotations`.
fn injected(annotations: Value) -> Vec<Value> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"initguard.dev/inject": "enabled"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    });
    let mut pod = pod;
    pod["metadata"]["annotations"] = annotations;
    let policy = InitSteps::from_settings(&Value::Null).unwrap();
    let outcome = policy.evaluate(&Request::create(pod)).unwrap();
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let Some(Mutation::Object(injected)) = outcome.mutation else {
        panic!(
            "the steps are injected into the pod: {:?}",
            outcome.mutation
        );
    };
    injected["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .clone()
}

/// A scratch directory with stand-in tools in `bin/`.
struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("initguard-steps-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bin")).unwrap();
        Self { root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Installs `bin/NAME` running `body` under /bin/sh.
    fn tool(&self, name: &str, body: &str) {
        let path = self.path(&format!("bin/{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
    }

    /// A tool that fails its first `failures` calls, then succeeds, counting calls in a file.
    fn flaky_tool(&self, name: &str, failures: usize) {
        let counter = self.path(&format!("{name}.calls"));
        self.tool(
            name,
            &format!(
                "echo x >> '{0}'\n[ \"$(wc -l < '{0}')\" -gt {failures} ]",
                counter.display()
            ),
        );
    }

    fn calls(&self, name: &str) -> usize {
        std::fs::read_to_string(self.path(&format!("{name}.calls")))
            .map_or(0, |text| text.lines().count())
    }

    /// Runs `container` as the kubelet would, with `overrides` on top of its environment.
    fn run(&self, container: &Value, overrides: &[(&str, String)]) -> Run {
        let script = container["command"][2].as_str().unwrap();
        assert_eq!(container["command"][0], "/bin/sh");
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(script).env_clear();
        for var in container["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap();
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => "web-7d9f".to_owned(),
                Some("metadata.namespace") => "shop".to_owned(),
                Some("status.podIP") => "10.1.2.3".to_owned(),
                Some(other) => panic!("unexpected field {other}"),
                None => var["value"].as_str().unwrap().to_owned(),
            };
            command.env(name, value);
        }
        for (name, value) in overrides {
            command.env(name, value);
        }
        command.env(
            "PATH",
            format!("{}:/usr/bin:/bin", self.path("bin").display()),
        );
        let started = Instant::now();
        let output = command.output().unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn quick(step: &str) -> Value {
    json!({
        format!("initguard.dev/{step}-timeout"): "3s",
        format!("initguard.dev/{step}-interval"): "1s",
    })
}

fn with(mut annotations: Value, step: &str, value: &str) -> Value {
    annotations[format!("initguard.dev/{step}")] = json!(value);
    annotations
}

/// The bound of a step given `timeout` seconds: the timeout, one last attempt, and slack for a
/// loaded machine.
fn within(run: &Run, timeout: u64) {
    assert!(
        run.elapsed < Duration::from_secs(timeout + 5),
        "took {:?} for a {timeout}s bound: {run:?}",
        run.elapsed
    );
}

#[test]
fn wait_for_dns_retries_until_the_name_resolves() {
    let sandbox = Sandbox::new("dns-ok");
    sandbox.flaky_tool("nslookup", 2);
    let steps = injected(with(quick("wait-for-dns"), "wait-for-dns", "myservice"));
    let run = sandbox.run(&steps[0], &[("INITGUARD_TIMEOUT", "10".to_owned())]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(sandbox.calls("nslookup"), 3);
    assert!(
        run.stdout
            .contains("initguard wait-for-dns: myservice resolves (attempt 3)"),
        "{run:?}"
    );
}

#[test]
fn wait_for_dns_gives_up_within_its_bound_and_says_why() {
    let sandbox = Sandbox::new("dns-never");
    sandbox.flaky_tool("nslookup", usize::MAX >> 1);
    let steps = injected(with(
        quick("wait-for-dns"),
        "wait-for-dns",
        "myservice,mydb",
    ));
    assert_eq!(steps.len(), 2);
    let run = sandbox.run(&steps[1], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    within(&run, 3);
    assert!(
        run.stderr
            .contains("initguard wait-for-dns: gave up after 3s and ")
            && run
                .stderr
                .contains(" attempts: mydb resolves did not happen"),
        "{run:?}"
    );
}

#[test]
fn wait_for_tcp_against_a_port_that_never_opens() {
    let sandbox = Sandbox::new("tcp");
    sandbox.tool("nc", "exit 1");
    let steps = injected(with(quick("wait-for-tcp"), "wait-for-tcp", "mydb:5432"));
    let run = sandbox.run(&steps[0], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    within(&run, 3);
    assert!(
        run.stderr
            .contains("mydb:5432 accepts connections did not happen"),
        "{run:?}"
    );
}

#[test]
fn wait_for_http_succeeds_on_a_2xx() {
    let sandbox = Sandbox::new("http");
    sandbox.flaky_tool("wget", 1);
    let steps = injected(with(
        quick("wait-for-http"),
        "wait-for-http",
        "http://config-server/healthz",
    ));
    let run = sandbox.run(&steps[0], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("(attempt 2)"), "{run:?}");
}

#[test]
fn git_clone_gives_up_on_a_failing_git_and_leaves_nothing_behind() {
    let sandbox = Sandbox::new("git-fail");
    sandbox.tool(
        "git",
        "echo 'fatal: unable to access repository' >&2\nexit 128",
    );
    let checkout = sandbox.path("work");
    std::fs::create_dir_all(&checkout).unwrap();
    let steps = injected(with(
        quick("git-clone"),
        "git-clone",
        "https://github.com/moby/moby.git",
    ));
    let run = sandbox.run(&steps[0], &[("GIT_DIR", checkout.display().to_string())]);
    assert_eq!(run.code, 1, "{run:?}");
    within(&run, 3);
    assert!(
        run.stderr.contains("fatal: unable to access repository")
            && run
                .stderr
                .contains("cloned https://github.com/moby/moby.git did not happen"),
        "{run:?}"
    );
    assert_eq!(std::fs::read_dir(&checkout).unwrap().count(), 0);
}

#[test]
fn git_clone_puts_the_checkout_in_place_and_skips_it_the_next_time() {
    let sandbox = Sandbox::new("git-ok");
    // Records its arguments and makes a checkout in the last one, as `git clone` does.
    sandbox.tool(
        "git",
        &format!(
            "echo \"$@\" >> '{}'\nfor last; do :; done\nmkdir -p \"$last/.git\" && echo readme > \"$last/README.md\"",
            sandbox.path("git.args").display()
        ),
    );
    let checkout = sandbox.path("work");
    std::fs::create_dir_all(&checkout).unwrap();
    let mut annotations = with(
        quick("git-clone"),
        "git-clone",
        "https://github.com/moby/moby.git",
    );
    annotations["initguard.dev/git-clone-ref"] = json!("v27.3.1");
    let steps = injected(annotations);
    let overrides = [("GIT_DIR", checkout.display().to_string())];
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(checkout.join(".git").is_dir() && checkout.join("README.md").is_file());
    assert!(!checkout.join(".initguard-clone").exists());
    let args = std::fs::read_to_string(sandbox.path("git.args")).unwrap();
    assert!(
        args.starts_with(
            "clone --quiet --depth 1 --branch v27.3.1 -- https://github.com/moby/moby.git "
        ),
        "{args}"
    );
    let again = sandbox.run(&steps[0], &overrides);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("already holds a checkout"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path("git.args")).unwrap(),
        args
    );
}

/// A wget that writes `body` to its -O file, or fails without touching it.
fn wget(sandbox: &Sandbox, succeed: bool) {
    let body = if succeed {
        "while [ $# -gt 0 ]; do [ \"$1\" = -O ] && out=$2; shift; done\necho fetched > \"$out\""
    } else {
        "echo 'wget: server returned error: HTTP/1.1 404 Not Found' >&2\nexit 1"
    };
    sandbox.tool("wget", body);
}

#[test]
fn fetch_replaces_the_file_whole_or_not_at_all() {
    let sandbox = Sandbox::new("fetch");
    let html = sandbox.path("html");
    std::fs::create_dir_all(&html).unwrap();
    let target = html.join("index.html");
    std::fs::write(&target, "old").unwrap();
    let steps = injected(with(
        quick("fetch"),
        "fetch",
        "http://info.cern.ch=/usr/share/nginx/html/index.html",
    ));
    let overrides = [("FETCH_PATH", target.display().to_string())];

    wget(&sandbox, false);
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 1, "{run:?}");
    within(&run, 3);
    assert!(run.stderr.contains("404 Not Found"), "{run:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    assert_eq!(
        std::fs::read_dir(&html).unwrap().count(),
        1,
        "no partial file left"
    );

    wget(&sandbox, true);
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "fetched\n");
    assert_eq!(
        std::fs::read_dir(&html).unwrap().count(),
        1,
        "no partial file left"
    );
}

#[test]
fn register_posts_the_pod_facts_from_the_downward_api() {
    let sandbox = Sandbox::new("register");
    sandbox.tool(
        "wget",
        &format!("echo \"$@\" > '{}'", sandbox.path("wget.args").display()),
    );
    let steps = injected(with(
        quick("register"),
        "register",
        "http://$(MANAGEMENT_SERVICE_HOST):$(MANAGEMENT_SERVICE_PORT)/register",
    ));
    // Kubernetes expands $(VAR) in env values before the container starts.
    let overrides = [("REGISTER_URL", "http://10.0.0.9:8080/register".to_owned())];
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 0, "{run:?}");
    let args = std::fs::read_to_string(sandbox.path("wget.args")).unwrap();
    assert!(
        args.contains(
            "--post-data instance=web-7d9f&ip=10.1.2.3&namespace=shop http://10.0.0.9:8080/register"
        ),
        "{args}"
    );
    let run = sandbox.run(&steps[0], &[("POD_IP", String::new())]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("POD_IP is empty"), "{run:?}");
}

#[test]
fn delay_sleeps_for_its_length() {
    let sandbox = Sandbox::new("delay");
    let steps = injected(json!({"initguard.dev/delay": "1s"}));
    let run = sandbox.run(&steps[0], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.elapsed >= Duration::from_secs(1), "{run:?}");
    assert!(run.stdout.contains("waiting 1s"), "{run:?}");
}

#[test]
fn render_config_substitutes_pod_facts_and_overwrites_whole_files() {
    let sandbox = Sandbox::new("render");
    let templates = sandbox.path("templates");
    let output = sandbox.path("out");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(
        templates.join("app.conf"),
        "listen ${POD_IP}:8080\nname ${POD_NAME}.${POD_NAMESPACE}\nkeep $HOME & \\n\n",
    )
    .unwrap();
    std::fs::write(
        output.join("app.conf"),
        "stale and much longer than the new file\n",
    )
    .unwrap();
    let steps = injected(json!({"initguard.dev/render-config": "app-config"}));
    let overrides = [
        ("TEMPLATE_DIR", templates.display().to_string()),
        ("OUTPUT_DIR", output.display().to_string()),
    ];
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(output.join("app.conf")).unwrap(),
        "listen 10.1.2.3:8080\nname web-7d9f.shop\nkeep $HOME & \\n\n"
    );
    assert_eq!(std::fs::read_dir(&output).unwrap().count(), 1);

    std::fs::remove_file(templates.join("app.conf")).unwrap();
    let run = sandbox.run(&steps[0], &overrides);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no templates in"), "{run:?}");
}

#[test]
fn every_step_script_is_valid_posix_shell() {
    for step in initguard_rules::init_steps::catalog::BUILTIN_STEPS {
        let script = step.script();
        let output = Command::new("/bin/sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            step.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !script.lines().any(|l| l.trim_start().starts_with('#')),
            "{}: comments are stripped",
            step.name()
        );
    }
}
