//! The built-in steps: what each runs, in which image, with which defaults.

use std::time::Duration;

use serde::Deserialize;

/// The eight built-in steps, in the order they run when a pod asks for several.
///
/// Waits come first (nothing else is useful until the pod's dependencies answer), then the
/// pause, then the steps that put content into shared volumes, and registration last, once the
/// pod is otherwise ready to start.
pub const BUILTIN_STEPS: &[BuiltinStep] = &[
    BuiltinStep::WaitForDns,
    BuiltinStep::WaitForTcp,
    BuiltinStep::WaitForHttp,
    BuiltinStep::Delay,
    BuiltinStep::GitClone,
    BuiltinStep::Fetch,
    BuiltinStep::RenderConfig,
    BuiltinStep::Register,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinStep {
    WaitForDns,
    WaitForTcp,
    WaitForHttp,
    GitClone,
    Fetch,
    Register,
    Delay,
    RenderConfig,
}

/// Image pinned by version for the busybox-based steps: it has `sh`, `nslookup`, `nc`, `wget`,
/// `sed` and `timeout`.
const BUSYBOX: &str = "docker.io/library/busybox:1.36.1";
/// Image pinned by version for `git-clone`.
const GIT: &str = "docker.io/alpine/git:v2.47.2";

const COMMON_SCRIPT: &str = include_str!("scripts/common.sh");

/// The option names a step can take, as `initguard.dev/<step>-<option>` annotations.
pub mod option {
    pub const TIMEOUT: &str = "timeout";
    pub const INTERVAL: &str = "interval";
    pub const IMAGE: &str = "image";
    pub const PLACEMENT: &str = "placement";
    pub const PATH: &str = "path";
    pub const REF: &str = "ref";
    pub const VOLUME: &str = "volume";
}

use option::{IMAGE, INTERVAL, PATH, PLACEMENT, REF, TIMEOUT, VOLUME};

const WAITS: &[&str] = &[TIMEOUT, INTERVAL, IMAGE, PLACEMENT];

/// Everything a built-in step is, in one place.
struct Definition {
    name: &'static str,
    /// The step's own part of its script; [`BuiltinStep::script`] prepends the shared helpers.
    script: &'static str,
    image: &'static str,
    /// How long the step may take unless the pod asks for less (or, up to `max_timeout`, more).
    timeout: Duration,
    /// The longest time a pod may ask for.
    max_timeout: Duration,
    /// Requests and limits as (cpu, memory).
    requests: (&'static str, &'static str),
    limits: (&'static str, &'static str),
    options: &'static [&'static str],
}

/// A busybox step with small requests and limits.
const fn small(
    name: &'static str,
    script: &'static str,
    timeout: Duration,
    max_timeout: Duration,
    options: &'static [&'static str],
) -> Definition {
    Definition {
        name,
        script,
        image: BUSYBOX,
        timeout,
        max_timeout,
        requests: ("10m", "16Mi"),
        limits: ("100m", "64Mi"),
        options,
    }
}

const fn definition(step: BuiltinStep) -> Definition {
    const FIVE: Duration = Duration::from_mins(5);
    const TWENTY: Duration = Duration::from_mins(20);
    match step {
        BuiltinStep::WaitForDns => small(
            "wait-for-dns",
            include_str!("scripts/wait-for-dns.sh"),
            FIVE,
            TWENTY,
            WAITS,
        ),
        BuiltinStep::WaitForTcp => small(
            "wait-for-tcp",
            include_str!("scripts/wait-for-tcp.sh"),
            FIVE,
            TWENTY,
            WAITS,
        ),
        BuiltinStep::WaitForHttp => small(
            "wait-for-http",
            include_str!("scripts/wait-for-http.sh"),
            FIVE,
            TWENTY,
            WAITS,
        ),
        BuiltinStep::GitClone => Definition {
            name: "git-clone",
            script: include_str!("scripts/git-clone.sh"),
            image: GIT,
            timeout: Duration::from_mins(10),
            max_timeout: Duration::from_mins(30),
            requests: ("50m", "64Mi"),
            limits: ("500m", "256Mi"),
            options: &[TIMEOUT, INTERVAL, IMAGE, PLACEMENT, PATH, REF, VOLUME],
        },
        BuiltinStep::Fetch => small(
            "fetch",
            include_str!("scripts/fetch.sh"),
            FIVE,
            TWENTY,
            WAITS,
        ),
        BuiltinStep::Register => small(
            "register",
            include_str!("scripts/register.sh"),
            Duration::from_mins(2),
            TWENTY,
            WAITS,
        ),
        BuiltinStep::Delay => small(
            "delay",
            include_str!("scripts/delay.sh"),
            Duration::from_mins(1),
            Duration::from_mins(10),
            &[IMAGE, PLACEMENT],
        ),
        BuiltinStep::RenderConfig => small(
            "render-config",
            include_str!("scripts/render-config.sh"),
            Duration::from_mins(1),
            TWENTY,
            &[TIMEOUT, IMAGE, PLACEMENT, PATH, VOLUME],
        ),
    }
}

impl BuiltinStep {
    pub fn name(self) -> &'static str {
        definition(self).name
    }

    pub fn from_name(name: &str) -> Option<Self> {
        BUILTIN_STEPS.iter().copied().find(|s| s.name() == name)
    }

    pub fn default_image(self) -> &'static str {
        definition(self).image
    }

    /// The whole `sh -c` script of the step, without the comments the source files carry.
    /// Parameters reach it only through the environment, so no annotation value is ever read
    /// as shell code.
    pub fn script(self) -> String {
        COMMON_SCRIPT
            .lines()
            .chain(definition(self).script.lines())
            .filter(|line| !line.trim_start().starts_with('#'))
            .fold(String::new(), |mut script, line| {
                script.push_str(line);
                script.push('\n');
                script
            })
    }

    /// How long the step may take unless the pod asks for less (or, up to the maximum, more).
    pub fn default_timeout(self) -> Duration {
        definition(self).timeout
    }

    /// The longest time a pod may ask for.
    pub fn default_max_timeout(self) -> Duration {
        definition(self).max_timeout
    }

    pub fn default_resources(self) -> Resources {
        let definition = definition(self);
        Resources::new(definition.requests, definition.limits)
    }

    /// The options the step takes as `initguard.dev/<step>-<option>` annotations.
    pub fn options(self) -> &'static [&'static str] {
        definition(self).options
    }
}

/// Requests and limits of an injected container: cpu and memory, as quantities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    pub requests: CpuMemory,
    pub limits: CpuMemory,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuMemory {
    pub cpu: String,
    pub memory: String,
}

impl Resources {
    fn new(requests: (&str, &str), limits: (&str, &str)) -> Self {
        let pair = |(cpu, memory): (&str, &str)| CpuMemory {
            cpu: cpu.to_owned(),
            memory: memory.to_owned(),
        };
        Self {
            requests: pair(requests),
            limits: pair(limits),
        }
    }
}
