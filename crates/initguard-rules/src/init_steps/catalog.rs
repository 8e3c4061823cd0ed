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

impl BuiltinStep {
    pub fn name(self) -> &'static str {
        match self {
            Self::WaitForDns => "wait-for-dns",
            Self::WaitForTcp => "wait-for-tcp",
            Self::WaitForHttp => "wait-for-http",
            Self::GitClone => "git-clone",
            Self::Fetch => "fetch",
            Self::Register => "register",
            Self::Delay => "delay",
            Self::RenderConfig => "render-config",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        BUILTIN_STEPS.iter().copied().find(|s| s.name() == name)
    }

    pub fn default_image(self) -> &'static str {
        match self {
            Self::GitClone => GIT,
            _ => BUSYBOX,
        }
    }

    /// The step's own part of its script; [`Self::script`] prepends the shared helpers.
    fn own_script(self) -> &'static str {
        match self {
            Self::WaitForDns => include_str!("scripts/wait-for-dns.sh"),
            Self::WaitForTcp => include_str!("scripts/wait-for-tcp.sh"),
            Self::WaitForHttp => include_str!("scripts/wait-for-http.sh"),
            Self::GitClone => include_str!("scripts/git-clone.sh"),
            Self::Fetch => include_str!("scripts/fetch.sh"),
            Self::Register => include_str!("scripts/register.sh"),
            Self::Delay => include_str!("scripts/delay.sh"),
            Self::RenderConfig => include_str!("scripts/render-config.sh"),
        }
    }

    /// The whole `sh -c` script of the step, without the comments the source files carry.
    /// Parameters reach it only through the environment, so no annotation value is ever read
    /// as shell code.
    pub fn script(self) -> String {
        COMMON_SCRIPT
            .lines()
            .chain(self.own_script().lines())
            .filter(|line| !line.trim_start().starts_with('#'))
            .fold(String::new(), |mut script, line| {
                script.push_str(line);
                script.push('\n');
                script
            })
    }

    /// How long the step may take unless the pod asks for less (or, up to the maximum, more).
    pub fn default_timeout(self) -> Duration {
        match self {
            Self::WaitForDns | Self::WaitForTcp | Self::WaitForHttp | Self::Fetch => {
                Duration::from_mins(5)
            }
            Self::GitClone => Duration::from_mins(10),
            Self::Register => Duration::from_mins(2),
            Self::Delay | Self::RenderConfig => Duration::from_mins(1),
        }
    }

    /// The longest time a pod may ask for.
    pub fn default_max_timeout(self) -> Duration {
        match self {
            Self::GitClone => Duration::from_mins(30),
            Self::Delay => Duration::from_mins(10),
            _ => Duration::from_mins(20),
        }
    }

    pub fn default_resources(self) -> Resources {
        match self {
            Self::GitClone => Resources::new(("50m", "64Mi"), ("500m", "256Mi")),
            _ => Resources::new(("10m", "16Mi"), ("100m", "64Mi")),
        }
    }

    /// The options the step takes as `initguard.dev/<step>-<option>` annotations.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Self::WaitForDns
            | Self::WaitForTcp
            | Self::WaitForHttp
            | Self::Fetch
            | Self::Register => &["timeout", "interval", "image", "placement"],
            Self::GitClone => &[
                "timeout",
                "interval",
                "image",
                "placement",
                "path",
                "ref",
                "volume",
            ],
            Self::Delay => &["image", "placement"],
            Self::RenderConfig => &["timeout", "image", "placement", "path", "volume"],
        }
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
