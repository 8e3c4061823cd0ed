//! The annotation grammar: from a pod's `initguard.dev/*` annotations to the steps and items
//! they ask for (`super::container` builds their containers).
//!
//! | annotation | value |
//! |---|---|
//! | `wait-for-dns` | names, comma-separated: `myservice,mydb.shop.svc.cluster.local` |
//! | `wait-for-tcp` | `host:port` items: `mydb:5432,[fd00::1]:6379` |
//! | `wait-for-http` | `http(s)://` URLs answering 2xx |
//! | `git-clone` | one repository URL (`https://`, `http://`, `ssh://`, `git@host:path`) |
//! | `fetch` | `url=/absolute/file` items; files in one directory share one volume |
//! | `register` | one URL; `$(VAR)` expands from the step's environment |
//! | `delay` | one duration: `60s`, `2m` |
//! | `render-config` | one ConfigMap name; its keys are templates |
//!
//! Options are `initguard.dev/<step>-<option>`: `timeout` and `interval` (durations), `image`
//! (where the cluster allows it), `placement` (`before` or `after` the pod's own init
//! containers), and for `git-clone` `path`, `ref` and `volume`, for `render-config` `path` and
//! `volume`. Every problem is reported, each at its annotation.

use std::collections::BTreeMap;
use std::time::Duration;

use initguard_core::image::ImageRef;
use initguard_core::k8s_openapi::api::core::v1::{Container, EnvVar};
use initguard_core::{FieldPath, Violation, Workload};

use super::catalog::{BuiltinStep, option};
use super::container::{container, env};
use super::{
    ANNOTATION_PREFIX, ANNOTATIONS, Action, InitSteps, Placement, STATUS_ANNOTATION, Step,
};
use crate::text::is_dns1123_label;

/// Where `render-config` reads its ConfigMap's templates.
pub const TEMPLATE_DIR: &str = "/initguard/templates";

/// One init container a pod asked for, before it is fitted into the pod.
#[derive(Debug, Clone)]
pub struct Requested {
    /// Complete but for its volume mounts, which depend on the pod's volumes.
    pub container: Container,
    pub placement: Placement,
    /// Volumes the step writes and the app containers read, with where both mount them.
    pub shared: Vec<SharedVolume>,
    /// For `render-config`: the ConfigMap mounted read-only at [`TEMPLATE_DIR`].
    pub templates: Option<String>,
    /// The annotation that asked for it, for messages.
    pub annotation: FieldPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVolume {
    /// The volume to create when the app containers have none at `mount_path`.
    pub name: String,
    pub mount_path: String,
}

/// Reads the steps the pod asks for, in the order they will run.
pub fn read(
    policy: &InitSteps,
    workload: &Workload,
    metadata_path: &FieldPath,
) -> Result<Vec<Requested>, Vec<Violation>> {
    let annotations: BTreeMap<&str, &str> = workload
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.strip_prefix(ANNOTATION_PREFIX)?, v.as_str())))
        .collect();
    let path_of = |name: &str| {
        metadata_path
            .field("annotations")
            .key(&format!("{ANNOTATION_PREFIX}{name}"))
    };
    let mut errors = Vec::new();
    for &name in annotations.keys() {
        if let Some(message) = unknown_annotation(policy, &annotations, name) {
            errors.push(Violation::at(
                ANNOTATIONS,
                &path_of(name),
                format!("{ANNOTATION_PREFIX}{name}: {message}"),
            ));
        }
    }
    let mut requested = Vec::new();
    for step in &policy.steps {
        let Some(value) = annotations.get(step.name.as_str()) else {
            continue;
        };
        let annotation = path_of(&step.name);
        let mut reader = StepReader {
            step,
            annotations: &annotations,
            path_of: &path_of,
            errors: &mut errors,
        };
        let options = reader.options();
        let items = reader.items(value);
        let count = items.len();
        for (index, item) in items.into_iter().enumerate() {
            let name = if count == 1 {
                format!("initguard-{}", step.name)
            } else {
                format!("initguard-{}-{}", step.name, index + 1)
            };
            requested.push(Requested {
                container: container(step, &options, name, item.env),
                placement: options.placement,
                shared: item.shared,
                templates: item.templates,
                annotation: annotation.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(requested)
    } else {
        Err(errors)
    }
}

/// Why an `initguard.dev/` annotation is neither a step, an option of a requested step, nor
/// the status record.
fn unknown_annotation(
    policy: &InitSteps,
    annotations: &BTreeMap<&str, &str>,
    name: &str,
) -> Option<String> {
    if name == STATUS_ANNOTATION.trim_start_matches(ANNOTATION_PREFIX)
        || policy.step(name).is_some()
    {
        return None;
    }
    if policy.disabled.contains(name) {
        return Some("this step is disabled in this cluster".to_owned());
    }
    let option_of = policy.steps.iter().find_map(|step| {
        let option = name.strip_prefix(step.name.as_str())?.strip_prefix('-')?;
        step.options().contains(&option).then_some(step)
    });
    match option_of {
        Some(step) if annotations.contains_key(step.name.as_str()) => None,
        Some(step) => Some(format!(
            "an option of {ANNOTATION_PREFIX}{0}, which this pod does not ask for",
            step.name
        )),
        None => Some(format!(
            "unknown init step or option: steps are {}; options are {ANNOTATION_PREFIX}<step>-<option>",
            policy
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The options every step shares, read and checked.
pub(super) struct Options {
    pub(super) timeout: Duration,
    pub(super) interval: Duration,
    pub(super) image: String,
    pub(super) placement: Placement,
}

/// What one item of a step's annotation adds to the step's container.
struct Item {
    env: Vec<EnvVar>,
    shared: Vec<SharedVolume>,
    templates: Option<String>,
}

impl Item {
    fn env(env: Vec<EnvVar>) -> Self {
        Self {
            env,
            shared: Vec::new(),
            templates: None,
        }
    }
}

struct StepReader<'r, 'a> {
    step: &'r Step,
    annotations: &'r BTreeMap<&'a str, &'a str>,
    path_of: &'r dyn Fn(&str) -> FieldPath,
    errors: &'r mut Vec<Violation>,
}

impl<'a> StepReader<'_, 'a> {
    fn option(&self, option: &str) -> Option<&'a str> {
        self.annotations
            .get(format!("{}-{option}", self.step.name).as_str())
            .copied()
    }

    fn error(&mut self, annotation: &str, value: &str, message: impl std::fmt::Display) {
        self.errors.push(Violation::at(
            ANNOTATIONS,
            &(self.path_of)(annotation),
            format!("{ANNOTATION_PREFIX}{annotation}: {value:?}: {message}"),
        ));
    }

    fn option_error(&mut self, option: &str, value: &str, message: impl std::fmt::Display) {
        let annotation = format!("{}-{option}", self.step.name);
        self.error(&annotation, value, message);
    }

    fn options(&mut self) -> Options {
        let step = self.step;
        let mut options = Options {
            timeout: step.timeout,
            interval: step.interval,
            image: step.image.clone(),
            placement: step.placement,
        };
        if let Some(text) = self.option(option::TIMEOUT) {
            match parse_duration(text) {
                Ok(t) if t <= step.max_timeout => options.timeout = t,
                Ok(_) => self.option_error(
                    option::TIMEOUT,
                    text,
                    format_args!(
                        "longer than this cluster allows for {} ({})",
                        step.name,
                        humantime::format_duration(step.max_timeout)
                    ),
                ),
                Err(e) => self.option_error(option::TIMEOUT, text, e),
            }
        }
        if let Some(text) = self.option(option::INTERVAL) {
            match parse_duration(text) {
                Ok(i) if i <= options.timeout => options.interval = i,
                Ok(_) => {
                    self.option_error(option::INTERVAL, text, "longer than the step's timeout");
                }
                Err(e) => self.option_error(option::INTERVAL, text, e),
            }
        }
        if let Some(text) = self.option(option::IMAGE) {
            if !step.allow_image_override {
                self.option_error(
                    option::IMAGE,
                    text,
                    format_args!(
                        "this cluster does not let pods choose the image of {}",
                        step.name
                    ),
                );
            } else if let Err(e) = check_image(text) {
                self.option_error(option::IMAGE, text, e);
            } else {
                text.clone_into(&mut options.image);
            }
        }
        if let Some(text) = self.option(option::PLACEMENT) {
            match text {
                "before" => options.placement = Placement::Before,
                "after" => options.placement = Placement::After,
                _ => self.option_error(option::PLACEMENT, text, "expected before or after"),
            }
        }
        options
    }

    /// The step's annotation, one item per container to inject; none when it is malformed.
    fn items(&mut self, value: &str) -> Vec<Item> {
        let name = self.step.name.clone();
        let fail = |reader: &mut Self, message: String| {
            reader.error(&name, value, message);
            Vec::new()
        };
        let action = self.step.action.clone();
        let result = match action {
            Action::Builtin(builtin) => self.builtin_items(builtin, value),
            Action::Custom { mount_path, .. } => {
                if value.trim().is_empty() {
                    Err("empty: give the step its value".to_owned())
                } else {
                    let mut item = Item::env(vec![env("INITGUARD_VALUE", value)]);
                    if let Some(mount_path) = mount_path {
                        item.shared.push(SharedVolume {
                            name: format!("initguard-{}", self.step.name),
                            mount_path,
                        });
                    }
                    Ok(vec![item])
                }
            }
        };
        result.unwrap_or_else(|message| fail(self, message))
    }

    fn builtin_items(&mut self, step: BuiltinStep, value: &str) -> Result<Vec<Item>, String> {
        match step {
            BuiltinStep::WaitForDns => each(value, |name| {
                check_dns_name(name)?;
                Ok(Item::env(vec![env("TARGET", name)]))
            }),
            BuiltinStep::WaitForTcp => each(value, |target| {
                let (host, port) = parse_host_port(target)?;
                Ok(Item::env(vec![
                    env("TARGET_HOST", host),
                    env("TARGET_PORT", &port.to_string()),
                ]))
            }),
            BuiltinStep::WaitForHttp => each(value, |url| {
                check_url(url, &["http", "https"])?;
                Ok(Item::env(vec![env("TARGET", url)]))
            }),
            BuiltinStep::Register => {
                check_url(value, &["http", "https"])?;
                Ok(vec![Item::env(vec![env("REGISTER_URL", value)])])
            }
            BuiltinStep::Delay => {
                let delay = parse_duration(value)?;
                if delay > self.step.max_timeout {
                    return Err(format!(
                        "longer than this cluster allows ({})",
                        humantime::format_duration(self.step.max_timeout)
                    ));
                }
                Ok(vec![Item::env(vec![
                    env("DELAY_SECONDS", &delay.as_secs().to_string()),
                    // The delay is its own bound.
                    env("INITGUARD_TIMEOUT", &delay.as_secs().to_string()),
                ])])
            }
            BuiltinStep::GitClone => {
                check_url(value, &["https", "http", "ssh", "git"])?;
                let path = self.path_option("/workspace");
                let volume = self.volume_option("initguard-git-clone");
                let git_ref = match self.option(option::REF) {
                    Some(r) if is_git_ref(r) => r.to_owned(),
                    Some(r) => {
                        self.option_error(option::REF, r, "not a branch or tag name");
                        String::new()
                    }
                    None => String::new(),
                };
                let mut item = Item::env(vec![
                    env("GIT_REPO", value),
                    env("GIT_REF", &git_ref),
                    env("GIT_DIR", &path),
                ]);
                item.shared.push(SharedVolume {
                    name: volume,
                    mount_path: path,
                });
                Ok(vec![item])
            }
            BuiltinStep::Fetch => {
                let pairs = each(value, parse_fetch)?;
                let mut directories: Vec<&str> = Vec::new();
                for (_, path) in &pairs {
                    let directory = parent(path);
                    if !directories.contains(&directory) {
                        directories.push(directory);
                    }
                }
                let mut files = Vec::new();
                Ok(pairs
                    .iter()
                    .map(|(url, path)| {
                        if files.contains(path) {
                            return Err(format!("{path} is fetched twice"));
                        }
                        files.push(path);
                        let directory = parent(path);
                        let index = directories.iter().position(|d| *d == directory);
                        let name = match (directories.len(), index) {
                            (1, _) | (_, None) => "initguard-fetch".to_owned(),
                            (_, Some(i)) => format!("initguard-fetch-{}", i + 1),
                        };
                        let mut item =
                            Item::env(vec![env("FETCH_URL", url), env("FETCH_PATH", path)]);
                        item.shared.push(SharedVolume {
                            name,
                            mount_path: directory.to_owned(),
                        });
                        Ok(item)
                    })
                    .collect::<Result<Vec<_>, _>>()?)
            }
            BuiltinStep::RenderConfig => {
                check_dns_name(value).map_err(|e| format!("not a ConfigMap name: {e}"))?;
                let path = self.path_option("/etc/initguard");
                let volume = self.volume_option("initguard-render-config");
                let mut item = Item::env(vec![
                    env("TEMPLATE_DIR", TEMPLATE_DIR),
                    env("OUTPUT_DIR", &path),
                ]);
                item.shared.push(SharedVolume {
                    name: volume,
                    mount_path: path,
                });
                item.templates = Some(value.to_owned());
                Ok(vec![item])
            }
        }
    }

    fn path_option(&mut self, default: &str) -> String {
        match self.option(option::PATH) {
            Some(path) => match check_mount_path(path) {
                Ok(()) => path.to_owned(),
                Err(e) => {
                    self.option_error(option::PATH, path, e);
                    default.to_owned()
                }
            },
            None => default.to_owned(),
        }
    }

    fn volume_option(&mut self, default: &str) -> String {
        match self.option(option::VOLUME) {
            Some(name) if name.len() <= 63 && is_dns1123_label(name) => name.to_owned(),
            Some(name) => {
                self.option_error(option::VOLUME, name, "not a volume name (a DNS-1123 label)");
                default.to_owned()
            }
            None => default.to_owned(),
        }
    }
}

/// Reads each comma-separated item with `read`; an error names the item when there are several.
fn each<'v, T>(
    value: &'v str,
    read: impl Fn(&'v str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = list(value)?;
    let several = items.len() > 1;
    items
        .into_iter()
        .map(|item| {
            read(item).map_err(|e| {
                if several {
                    format!("item {item:?}: {e}")
                } else {
                    e
                }
            })
        })
        .collect()
}

/// Comma-separated items, trimmed; no empty or repeated item.
fn list(value: &str) -> Result<Vec<&str>, String> {
    let mut items: Vec<&str> = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("empty item in the comma-separated list".to_owned());
        }
        if items.contains(&item) {
            return Err(format!("{item:?} is listed twice"));
        }
        items.push(item);
    }
    Ok(items)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("not a duration like 30s or 5m: {e}"))?;
    if duration < Duration::from_secs(1) || duration.subsec_nanos() != 0 {
        return Err("must be a whole number of seconds, at least 1s".to_owned());
    }
    Ok(duration)
}

/// A DNS-1123 subdomain: lowercase labels joined by dots, at most 253 characters.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("must be no more than 253 characters".to_owned());
    }
    if name
        .split('.')
        .all(|label| label.len() <= 63 && is_dns1123_label(label))
    {
        Ok(())
    } else {
        Err("a lowercase DNS name: labels of a-z, 0-9 and '-', joined by '.'".to_owned())
    }
}

/// `host:port`, `[ipv6]:port`.
fn parse_host_port(target: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or("expected [address]:port for IPv6")?;
        if !host.contains(':')
            || !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = target.rsplit_once(':').ok_or("expected host:port")?;
        check_dns_name(host).map_err(|e| format!("host {host:?}: {e}"))?;
        (host, port)
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port {port:?} is not a number from 1 to 65535"))?;
    Ok((host, port))
}

/// A URL with one of `schemes` (`git` stands for `git@host:path`), a host, and no spaces or
/// control characters.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL cannot hold spaces or control characters".to_owned());
    }
    if schemes.contains(&"git")
        && let Some(rest) = url.strip_prefix("git@")
    {
        return match rest.split_once(':') {
            Some((host, path)) if !host.is_empty() && !path.is_empty() => Ok(()),
            _ => Err("expected git@host:path".to_owned()),
        };
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("expected a URL starting with {}://", schemes[0]));
    };
    if !schemes.iter().any(|s| *s == scheme && *s != "git") {
        return Err(format!(
            "scheme {scheme:?} is not one of {}",
            schemes
                .iter()
                .map(|s| if *s == "git" { "git@" } else { s })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(())
}

/// An absolute path without `..` or empty components, other than `/`.
pub fn check_mount_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path == "/" {
        return Err("expected an absolute path other than /".to_owned());
    }
    if path.ends_with('/') || path.contains("//") || path.split('/').any(|c| c == ".." || c == ".")
    {
        return Err("expected a clean path: no trailing /, no // and no . or .. parts".to_owned());
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err("a mount path cannot hold spaces, control characters or ':'".to_owned());
    }
    Ok(())
}

/// `url=/dir/file`.
fn parse_fetch(pair: &str) -> Result<(&str, &str), String> {
    let (url, path) = pair
        .rsplit_once('=')
        .ok_or("expected url=/absolute/path/of/the/file")?;
    check_url(url, &["http", "https"])?;
    check_mount_path(path).map_err(|e| format!("path {path:?}: {e}"))?;
    if parent(path) == "/" {
        return Err(format!(
            "path {path:?}: the file must be in a directory below /, which becomes the shared volume"
        ));
    }
    Ok((url, path))
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

/// A branch or tag name git would accept, conservatively.
fn is_git_ref(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '/', '.'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// An image reference with a version tag other than `latest`, or a digest.
pub fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{image:?} is not an image reference"));
    }
    match ImageRef::parse(image).unpinned() {
        None => Ok(()),
        Some(_) => Err(format!(
            "{image:?} is not pinned: give a version tag other than latest, or a digest"
        )),
    }
}
