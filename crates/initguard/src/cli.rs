//! Command-line interface.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use initguard_core::release::Release;
use initguard_server::{BoundServer, ConnectionLimits, Limits, ServerConfig, TlsSource};

use crate::check;
use crate::config;
use crate::input::ReadLimits;
use crate::output::{self, Format};
use crate::yaml;

/// Admission control for Kubernetes init containers.
#[derive(Debug, Parser)]
#[command(name = "initguard", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the TLS admission webhook.
    Serve(Box<ServeArgs>),
    /// Evaluate manifests offline with the same engine as the webhook.
    Check(CheckArgs),
    /// Make a CA and a serving certificate for the webhook's Service, or renew it.
    Certs(CertsArgs),
    /// Write and test WebAssembly policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List the built-in rules, or show one with its examples.
    Rules {
        /// A rule id such as IG-V004.
        id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The Service in front of initguard.
    #[arg(long, default_value = "initguard")]
    pub service: String,
    /// The Service's namespace.
    #[arg(long, default_value = "initguard-system")]
    pub namespace: String,
    /// Where ca.crt, ca.key, tls.crt and tls.key are written (keys with mode 0600).
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// How long the certificates are valid.
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
    pub validity: Duration,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Sign a new serving certificate with the CA in --out-dir (the caBundle stays valid).
    #[arg(long, conflicts_with = "force")]
    pub renew: bool,
    /// Print the Mutating- and ValidatingWebhookConfiguration with the caBundle filled in.
    #[arg(long)]
    pub webhook_config: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy crate that builds for wasm32-wasip2 and passes its own tests.
    New {
        /// Crate name, such as `no-latest-tags`; the folder is created in the current one.
        name: String,
        /// The initguard-policy SDK to depend on (default: this source tree's).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run YAML test suites: a suite file, or a policy crate (built first) with tests/*.yaml.
    Test { path: PathBuf },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file, reloaded when it changes; the embedded default when not given.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate (PEM), reloaded when it changes. Without one, a CA and a
    /// certificate are generated at start.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Service name to put in a generated certificate (with --namespace, every form:
    /// svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local).
    #[arg(long)]
    pub service: Option<String>,
    /// Namespace of --service.
    #[arg(long, requires = "service")]
    pub namespace: Option<String>,
    /// Where to write the CA of a generated certificate.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("initguard-ca.pem"))]
    pub ca_bundle_out: PathBuf,
    /// Largest request body, in bytes (suffixes Ki and Mi allowed).
    #[arg(long, default_value = "8Mi", value_parser = parse_size)]
    pub body_limit: usize,
    /// Deadline for one review; keep it below the webhook's timeoutSeconds.
    #[arg(long, default_value = "9s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Evaluation threads: reviews evaluated at once (default: two per core).
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// How often config, modules and certificates are checked for changes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// How long requests in flight may take to finish after SIGTERM; connections without
    /// one close at once.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Time a client has to send a whole request body, from its head.
    #[arg(long, default_value_t = Limits::default().body_timeout.into())]
    pub body_timeout: humantime::Duration,
    /// Time a client has to finish the TLS handshake.
    #[arg(long, default_value_t = DEFAULT_CONNECTION.handshake_timeout.into())]
    pub handshake_timeout: humantime::Duration,
    /// Time a client has to send a request head (HTTP/1.1), from its first byte.
    #[arg(long, default_value_t = DEFAULT_CONNECTION.header_timeout.into())]
    pub header_timeout: humantime::Duration,
    /// Time a connection with no request in flight stays open (above the apiserver's 90 s).
    #[arg(long, default_value_t = DEFAULT_CONNECTION.idle_timeout.into())]
    pub idle_timeout: humantime::Duration,
    /// Time a write to a client may make no progress (a client that does not read).
    #[arg(long, default_value_t = DEFAULT_CONNECTION.write_timeout.into())]
    pub write_timeout: humantime::Duration,
    /// Connections open at once, lowered to what the open-file limit leaves; at the cap, idle
    /// connections make room for a new client.
    #[arg(long, default_value_t = DEFAULT_CONNECTION.max_connections)]
    pub max_connections: usize,
    /// HTTP/2 streams open at once on one connection.
    #[arg(long, default_value_t = DEFAULT_CONNECTION.max_concurrent_streams)]
    pub max_concurrent_streams: u32,
    /// Largest request head in bytes: URI and headers (HTTP/1.1 and HTTP/2).
    #[arg(long, default_value_t = Limits::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// JSON objects one review may hold: bounds the memory of one evaluation.
    #[arg(long, default_value_t = Limits::default().max_objects)]
    pub max_objects: usize,
    /// Violations spelled out in one denial; the rest are counted.
    #[arg(long, default_value_t = Limits::default().max_listed_violations)]
    pub max_listed_violations: usize,
    /// HTTP/2 streams a client may reset (or make the server reset) before its connection is
    /// closed: rapid-reset protection.
    #[arg(long, default_value_t = DEFAULT_CONNECTION.max_reset_streams)]
    pub max_reset_streams: usize,
}

/// The connection bounds of `serve`, whose values are its flags' defaults.
static DEFAULT_CONNECTION: std::sync::LazyLock<ConnectionLimits> =
    std::sync::LazyLock::new(ConnectionLimits::default);

fn parse_size(text: &str) -> Result<usize, String> {
    config::parse_size(text)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size: use bytes, or a number with Ki, Mi or Gi"))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files, folders (searched for *.yaml, *.yml, *.json) or `-` for stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Config file; the embedded default when not given.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Write the manifests after mutation to this folder, or `-` for stdout.
    #[arg(long, value_name = "DIR|-")]
    pub mutated: Option<PathBuf>,
    /// Exit 1 on warnings too, not only on denials.
    #[arg(long)]
    pub fail_on_warn: bool,
    /// The Kubernetes release to check against (`v1.N` or `latest`): objects in API versions
    /// it does not serve are denied as kubectl and the apiserver would refuse them, and it is
    /// what `latest` means in the policies' release settings (Pod Security's `version`,
    /// `init-container-validity`'s `kubernetesVersion`).
    #[arg(long, value_name = "v1.N", default_value = "latest", value_parser = Release::parse)]
    pub kubernetes_version: Release,
    /// Largest input (a file, or stdin), in bytes (suffixes Ki, Mi and Gi allowed).
    #[arg(long, value_name = "SIZE", default_value_t = ReadLimits::default().max_input_bytes, value_parser = parse_size_u64)]
    pub max_input_size: u64,
    /// Largest YAML document, in bytes (suffixes Ki, Mi and Gi allowed).
    #[arg(long, value_name = "SIZE", default_value_t = ReadLimits::default().max_document_bytes, value_parser = parse_size)]
    pub max_document_size: usize,
}

fn parse_size_u64(text: &str) -> Result<u64, String> {
    parse_size(text).map(|n| n as u64)
}

/// Runs a parsed command line; errors are usage or input errors (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => run_serve(*args),
        Command::Check(args) => run_check(&args),
        Command::Rules { id } => run_rules(id.as_deref()),
        Command::Certs(args) => run_certs(&args),
        Command::Policy(PolicyCommand::New { name, sdk }) => {
            let sdk = sdk.unwrap_or_else(crate::policy_new::default_sdk_path);
            let root = crate::policy_new::scaffold(Path::new("."), &name, &sdk)
                .map_err(anyhow::Error::msg)?;
            println!(
                "created {}: `cargo test` there, then `initguard policy test {}`",
                root.display(),
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Test { path }) => {
            let host = initguard_wasm::WasmHost::new(initguard_wasm::HostConfig::default())?;
            let summary = crate::policy_tests::run(&path, &host).map_err(anyhow::Error::msg)?;
            print!("{}", summary.report);
            Ok(if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// The config file (or the embedded default) as the server's policy source: one WASM engine
/// for every reload, and the config and its modules watched.
struct ConfigPolicies {
    path: Option<PathBuf>,
    loader: config::Loader,
}

impl initguard_server::PolicySource for ConfigPolicies {
    fn load(&self) -> Result<initguard_core::Pipeline, initguard_server::LoadError> {
        Ok(self.loader.load(self.path.as_deref())?)
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let base = path.parent().unwrap_or(Path::new("."));
        // A config that does not parse has no modules to watch; its reload reports why.
        let modules: Vec<PathBuf> = config::Config::load(Some(path)).map_or_else(
            |_| Vec::new(),
            |c| {
                c.policies
                    .into_iter()
                    .filter_map(|p| p.module)
                    .map(|m| base.join(m))
                    .collect()
            },
        );
        std::iter::once(path.clone()).chain(modules).collect()
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // clap makes --tls-cert and --tls-key go together.
    let tls = if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        TlsSource::Files {
            cert,
            key,
            client_ca: args.client_ca,
        }
    } else {
        let names = initguard_server::tls::service_names(
            args.service.as_deref(),
            args.namespace.as_deref(),
        );
        TlsSource::SelfSigned {
            names,
            ca_bundle_out: args.ca_bundle_out,
        }
    };
    let mut limits = Limits {
        body_limit: args.body_limit,
        request_timeout: args.request_timeout,
        body_timeout: args.body_timeout.into(),
        max_header_bytes: args.max_header_bytes,
        max_objects: args.max_objects,
        max_listed_violations: args.max_listed_violations,
        ..Limits::default()
    };
    let connections = ConnectionLimits {
        handshake_timeout: args.handshake_timeout.into(),
        header_timeout: args.header_timeout.into(),
        idle_timeout: args.idle_timeout.into(),
        write_timeout: args.write_timeout.into(),
        max_connections: args.max_connections,
        max_concurrent_streams: args.max_concurrent_streams,
        max_reset_streams: args.max_reset_streams,
    };
    if let Some(max) = args.max_concurrency {
        limits.evaluation_threads = max;
    }
    let config = ServerConfig {
        listen: args.listen,
        tls,
        limits,
        connections,
        reload_interval: args.reload_interval,
        shutdown_grace: args.shutdown_grace,
    };
    let policies = std::sync::Arc::new(ConfigPolicies {
        path: args.config,
        loader: config::Loader::new(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = BoundServer::bind(config, policies).await?;
        let address = server.local_addr()?;
        tracing::info!(%address, "initguard is serving /validate and /mutate");
        if let Some(bundle) = &server.ca_bundle {
            let port = address.port();
            eprintln!("initguard: listening on https://{address} with a generated certificate");
            eprintln!("initguard: CA bundle written to {}", bundle.display());
            eprintln!(
                "initguard: try: curl --cacert {} https://localhost:{port}/healthz",
                bundle.display()
            );
        }
        server.serve(initguard_server::shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let pipeline =
        config::Loader::for_release(args.kubernetes_version).load(args.config.as_deref())?;
    let options = check::CheckOptions {
        release: args.kubernetes_version,
        limits: ReadLimits {
            max_input_bytes: args.max_input_size,
            max_document_bytes: args.max_document_size,
        },
        keep_objects: args.mutated.is_some(),
    };
    if args.mutated.is_none() && output::streams(args.output) {
        // Written as judged: memory holds the inputs and a batch, not every report.
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let mut stream = output::Stream::begin(args.output, &mut stdout)?;
        let checked = check::check_streaming(
            &pipeline,
            options,
            &args.inputs,
            &mut std::io::stdin().lock(),
            &mut |report| stream.object(&report),
        )?;
        stream.end(&checked)?;
        stdout.flush()?;
        return Ok(ExitCode::from(checked.exit_code(args.fail_on_warn)));
    }
    let report = check::check(
        &pipeline,
        options,
        &args.inputs,
        &mut std::io::stdin().lock(),
    );
    match &args.mutated {
        // The manifests go to stdout, to be piped; the report to stderr.
        Some(target) if target.as_os_str() == "-" => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            for (_, objects) in report.final_manifests() {
                stdout.write_all(yaml::to_yaml_stream(&objects).as_bytes())?;
            }
            stdout.flush()?;
            let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
            output::render(&report, args.output, &mut stderr)?;
            stderr.flush()?;
        }
        other => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            output::render(&report, args.output, &mut stdout)?;
            stdout.flush()?;
            if let Some(folder) = other {
                write_mutated(folder, &report)?;
            }
        }
    }
    Ok(ExitCode::from(report.checked.exit_code(args.fail_on_warn)))
}

/// Writes each source's final manifests under `folder` (see [`check::mutated_path`]), after
/// making sure no two sources would share a file (the same file named twice may).
fn write_mutated(folder: &Path, report: &check::CheckReport) -> anyhow::Result<()> {
    let outputs: Vec<(PathBuf, &str, Vec<serde_json::Value>)> = report
        .final_manifests()
        .into_iter()
        .map(|(source, objects)| (check::mutated_path(folder, source), source, objects))
        .collect();
    let same_file = |a: &str, b: &str| {
        a == b
            || matches!(
                (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let mut targets: std::collections::BTreeMap<&Path, &str> = std::collections::BTreeMap::new();
    for (path, source, _) in &outputs {
        if let Some(other) = targets.insert(path, source)
            && !same_file(other, source)
        {
            anyhow::bail!(
                "--mutated: {other} and {source} would both be written to {}; check them in separate runs",
                path.display()
            );
        }
    }
    for (path, _, objects) in &outputs {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(path, yaml::to_yaml_stream(objects))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn run_certs(args: &CertsArgs) -> anyhow::Result<ExitCode> {
    // Printing the configurations for a CA already written writes nothing.
    if args.webhook_config
        && !args.force
        && !args.renew
        && let Some(ca) = crate::certs::existing_ca(&args.out_dir)
    {
        eprintln!(
            "initguard: using the CA in {}",
            args.out_dir.join(crate::certs::CA_CERT).display()
        );
        let manifests = crate::certs::webhook_configurations(&args.service, &args.namespace, &ca);
        print!("{}", yaml::to_yaml_stream(&manifests));
        return Ok(ExitCode::SUCCESS);
    }
    let request = crate::certs::CertsRequest {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        out_dir: args.out_dir.clone(),
        validity: args.validity,
        force: args.force,
        renew: args.renew,
    };
    let ca = crate::certs::write(&request).map_err(anyhow::Error::msg)?;
    eprintln!(
        "initguard: wrote {} for {}",
        if args.renew {
            "tls.crt and tls.key"
        } else {
            "ca.crt, ca.key, tls.crt and tls.key"
        },
        crate::certs::names(&args.service, &args.namespace).join(", ")
    );
    if args.webhook_config {
        let manifests = crate::certs::webhook_configurations(&args.service, &args.namespace, &ca);
        print!("{}", yaml::to_yaml_stream(&manifests));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_rules(id: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match id {
        None => {
            let id_width = initguard_rules::rules()
                .map(|r| r.id.len())
                .max()
                .unwrap_or_default();
            let policy_width = initguard_rules::rules()
                .map(|r| r.policy.len())
                .max()
                .unwrap_or_default();
            for rule in initguard_rules::rules() {
                writeln!(
                    stdout,
                    "{:<id_width$}  {:<policy_width$}  {} [Kubernetes {}]",
                    rule.id, rule.policy, rule.summary, rule.releases
                )?;
            }
        }
        Some(id) => {
            let rule = initguard_rules::rules()
                .find(|r| r.id.eq_ignore_ascii_case(id))
                .with_context(|| format!("no rule {id:?}: `initguard rules` lists them"))?;
            writeln!(stdout, "{} ({}): {}", rule.id, rule.policy, rule.summary)?;
            writeln!(stdout, "Kubernetes releases: {}", rule.releases)?;
            if !rule.settings.is_empty() {
                writeln!(stdout, "settings: {}", rule.settings)?;
            }
            writeln!(
                stdout,
                "\nExamples (fails, fails, passes):\n{}",
                rule.examples.trim_end()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
