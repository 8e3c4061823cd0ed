//! The wasmtime host for `initguard:policy` components.
//!
//! One [`WasmHost`] owns the `Engine` (pooling allocator, epoch interruption, a ticker thread)
//! and the linker. Each module is compiled once (the machine code is cached on disk by content
//! hash and engine), pre-linked, and wrapped as a [`WasmPolicy`] that implements core's
//! `Policy`, so matching, modes and patch handling are the built-ins'. Every evaluation gets a
//! fresh instance from the pool: nothing leaks between requests. A trap, a timeout, running out
//! of memory or a malformed outcome is a `PolicyError` naming the cause; the host never panics
//! and the next evaluation is unaffected.

pub mod build;
mod cache;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use initguard_core::{Outcome, Policy, PolicyError, Request};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../initguard-policy/wit",
        world: "policy",
        // A bad `review` handle traps, as a guest's misuse of a resource should.
        imports: { default: trappable },
        with: {
            "initguard:policy/request.review": crate::Reviewed,
        },
    });
}

mod review;

use bindings::initguard::policy::host::Level;
use bindings::initguard::policy::types::JsonNode;

/// The contract this host speaks; components built against another version are refused at
/// load with this in the message.
pub const CONTRACT: &str = "initguard:policy@0.3.0";

/// The request behind the guest's `review` handle: a clone that shares what the request has
/// parsed (see [`Request`]), so every policy of a request reads it once.
#[derive(Debug)]
pub struct Reviewed(Request);

/// How often the epoch advances; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Guest stdout and stderr kept per evaluation; the rest is dropped.
const CAPTURED_OUTPUT: usize = 16 * 1024;
/// `host.log` messages kept per evaluation.
const LOG_LINES: usize = 64;
/// The largest outcome accepted, counting every string in it.
const MAX_OUTCOME_BYTES: usize = 1 << 20;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled modules are cached; `None` compiles at every load.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once (concurrent evaluations across all policies).
    pub max_instances: u32,
    /// The largest linear memory any policy may be given.
    pub max_memory: usize,
    /// Whether a module missing from the cache is first compiled by the baseline compiler
    /// (Winch: a fraction of a second and a few MB for a policy) and then by the optimising
    /// one (Cranelift: seconds and tens of MB) in the background, one module at a time, its
    /// code replacing the baseline's when done. Without it, a load waits for Cranelift.
    pub tiered: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_instances: 256,
            max_memory: 256 << 20,
            tiered: true,
        }
    }
}

/// `$XDG_CACHE_HOME/initguard/wasm`, or `~/.cache/initguard/wasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("initguard").join("wasm"))
}

/// What config says about one module.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The policy's name in config, for messages and logs.
    pub name: String,
    pub path: PathBuf,
    /// Hex SHA-256 the module must have.
    pub sha256: Option<String>,
    /// Settings as JSON, checked by the module's `validate-settings` at load.
    pub settings: serde_json::Value,
    /// Deadline of one evaluation.
    pub timeout: Duration,
    /// Linear memory one instance may grow to.
    pub memory_limit: usize,
}

/// A module that cannot be loaded, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot read module {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("module {path} has sha256 {actual}, config expects {expected}")]
    Checksum {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("module {path} is not a valid component: {error}")]
    Compile { path: String, error: String },
    #[error("module {path} does not implement {contract}: {error}", contract = CONTRACT)]
    Contract { path: String, error: String },
    #[error("module {path} rejected its settings: {error}")]
    Settings { path: String, error: String },
    #[error("module {path} failed at load: {error}")]
    Load { path: String, error: String },
    #[error("memory limit of {limit} bytes is above the host's maximum of {max}")]
    MemoryLimit { limit: usize, max: usize },
    #[error("cannot set up the WASM engine: {0}")]
    Engine(String),
}

/// The per-store state: WASI with nothing granted, the memory limiter, captured output.
struct HostState {
    /// Made when the guest first calls WASI (a print, a panic message, a clock): most
    /// evaluations never do, and a context costs allocations and seeding its generators.
    wasi: Option<GuestWasi>,
    table: ResourceTable,
    limiter: MemoryLimiter,
    policy: Arc<str>,
    logged: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.get_or_insert_with(GuestWasi::new).ctx,
            table: &mut self.table,
        }
    }
}

/// WASI with nothing granted, its stdout and stderr captured, bounded.
struct GuestWasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl GuestWasi {
    fn new() -> Self {
        let stdout = MemoryOutputPipe::new(CAPTURED_OUTPUT);
        let stderr = MemoryOutputPipe::new(CAPTURED_OUTPUT);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            ctx,
            stdout,
            stderr,
        }
    }

    /// What the guest printed, at debug level.
    fn log_output(&self, policy: &str) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let captured = pipe.contents();
            if !captured.is_empty() {
                let text = String::from_utf8_lossy(&captured);
                tracing::debug!(policy, stream, "{}", text.trim_end());
            }
        }
    }
}

impl bindings::initguard::policy::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.logged += 1;
        if self.logged > LOG_LINES {
            return Ok(());
        }
        let policy = &*self.policy;
        let message: String = message.chars().take(2048).collect();
        match level {
            Level::Debug => tracing::debug!(policy, "{message}"),
            Level::Info => tracing::info!(policy, "{message}"),
            Level::Warn => tracing::warn!(policy, "{message}"),
            Level::Error => tracing::error!(policy, "{message}"),
        }
        Ok(())
    }
}

/// The `types` interface has only types; its host trait is empty.
impl bindings::initguard::policy::types::Host for HostState {}

/// Refuses memory growth past the policy's limit and remembers that it did, so that the
/// trap that follows is reported as running out of memory.
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The engine and linker shared by every policy.
pub struct WasmHost {
    optimizing: Compiler,
    /// Present when loads are tiered.
    baseline: Option<Compiler>,
    /// Modules compiled in this process, by SHA-256: reloads and concurrent loads of one
    /// module compile it once, and share its tier-up.
    compiled: Mutex<HashMap<String, Arc<Module>>>,
    /// Held by the thread compiling a module with the optimising compiler, so that modules
    /// are optimised one at a time.
    tier_up_turn: Arc<Mutex<()>>,
    config: HostConfig,
    /// Set when the host is dropped: stops the epoch ticker and tier-ups still waiting.
    host_gone: Arc<AtomicBool>,
}

/// An engine and the linker for it.
#[derive(Clone)]
struct Compiler {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Compiler {
    fn new(strategy: wasmtime::Strategy, config: &HostConfig) -> Result<Self, WasmError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .strategy(strategy);
        if strategy == wasmtime::Strategy::Cranelift {
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(config)))
                // One function at a time, whether a tier-up in the background or a load: a
                // compile must leave the other core to the reviews, and its memory bounded.
                .parallel_compilation(false);
        }
        let engine = Engine::new(&wasm).map_err(|e| WasmError::Engine(e.to_string()))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| WasmError::Engine(e.to_string()))?;
        bindings::Policy::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| WasmError::Engine(e.to_string()))?;
        Ok(Self { engine, linker })
    }

    /// The component pre-linked against the contract.
    fn link(&self, component: &Component) -> Result<Arc<Linked>, String> {
        if let Some(version) = other_contract(component, &self.engine) {
            return Err(format!(
                "it was built against initguard:policy@{version}; rebuild it with the \
                 initguard-policy SDK of this initguard, which speaks {CONTRACT}"
            ));
        }
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| format!("{e:#}"))?;
        let pre = bindings::PolicyPre::new(instance_pre).map_err(|e| format!("{e:#}"))?;
        Ok(Arc::new(Linked {
            pre,
            engine: self.engine.clone(),
        }))
    }
}

/// The version of `initguard:policy` a component imports, when it is not this host's: a
/// policy imports the contract's `types` and `request` interfaces whatever it does.
fn other_contract(component: &Component, engine: &Engine) -> Option<String> {
    let ours = CONTRACT.strip_prefix("initguard:policy@")?;
    component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| name.strip_prefix("initguard:policy/")?.split_once('@'))
        .map(|(_, version)| version.to_owned())
        .find(|version| version != ours)
}

/// The instance pool of the optimised code: a policy's initial memory (1 MiB, as the scaffold
/// links it) and its tables stay resident, and the kernel says which pages were touched, which
/// is what makes fresh instances cheap and lets them scale across cores; every resident byte is
/// scanned after each evaluation, so no more is kept. Baseline code lives only until its
/// tier-up, so it allocates on demand.
fn pool(config: &HostConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(config.max_instances)
        .total_core_instances(config.max_instances * 4)
        .total_memories(config.max_instances * 2)
        .total_tables(config.max_instances * 4)
        .max_memory_size(config.max_memory)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(16 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// A module's code, pre-linked, with the engine it was compiled for.
struct Linked {
    pre: bindings::PolicyPre<HostState>,
    engine: Engine,
}

/// One module, shared by every policy loaded from it: its best code so far.
struct Module {
    linked: RwLock<Arc<Linked>>,
    optimized: AtomicBool,
}

impl Module {
    fn current(&self) -> Arc<Linked> {
        Arc::clone(
            &self
                .linked
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A module to compile with the optimising compiler.
struct TierUp {
    module: std::sync::Weak<Module>,
    bytes: Vec<u8>,
    digest: String,
    path: String,
    optimizing: Compiler,
    cache_dir: Option<PathBuf>,
    turn: Arc<Mutex<()>>,
    /// Set when the host is dropped: a module still waiting for its turn is not compiled.
    host_gone: Arc<AtomicBool>,
}

impl TierUp {
    /// Compiles on a thread of its own, which ends when done: the compiler's working memory
    /// goes back with the thread rather than staying in an idle thread's allocator cache.
    fn spawn(self) {
        let spawned = std::thread::Builder::new()
            .name("initguard-wasm-tier-up".into())
            .spawn(move || self.run());
        if let Err(error) = spawned {
            tracing::warn!(
                "cannot start the optimising compiler, the baseline code stays: {error}"
            );
        }
    }

    /// A module dropped before its turn is not compiled; one that fails keeps its baseline
    /// code.
    fn run(self) {
        let _turn = self
            .turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.module.strong_count() == 0 || self.host_gone.load(Ordering::Relaxed) {
            return;
        }
        let started = std::time::Instant::now();
        let linked = cache::compile(
            &self.optimizing.engine,
            &self.bytes,
            &self.digest,
            self.cache_dir.as_deref(),
        )
        .and_then(|component| self.optimizing.link(&component));
        match (linked, self.module.upgrade()) {
            (Ok(linked), Some(module)) => {
                *module
                    .linked
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = linked;
                module.optimized.store(true, Ordering::Release);
                tracing::info!(
                    module = self.path,
                    seconds = started.elapsed().as_secs_f64(),
                    "optimised code of the module in use"
                );
            }
            (Err(error), _) => tracing::warn!(
                module = self.path,
                "the optimising compiler failed, the baseline code stays: {error}"
            ),
            (Ok(_), None) => {}
        }
    }
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for WasmHost {
    fn drop(&mut self) {
        self.host_gone.store(true, Ordering::Relaxed);
    }
}

impl WasmHost {
    pub fn new(config: HostConfig) -> Result<Self, WasmError> {
        let optimizing = Compiler::new(wasmtime::Strategy::Cranelift, &config)?;
        let baseline = config
            .tiered
            .then(|| Compiler::new(wasmtime::Strategy::Winch, &config))
            .transpose()?;
        let host_gone = Arc::new(AtomicBool::new(false));
        {
            let engines: Vec<_> = std::iter::once(&optimizing)
                .chain(&baseline)
                .map(|compiler| compiler.engine.weak())
                .collect();
            let stop = Arc::clone(&host_gone);
            std::thread::Builder::new()
                .name("initguard-wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        for engine in &engines {
                            if let Some(engine) = engine.upgrade() {
                                engine.increment_epoch();
                            }
                        }
                    }
                })
                .map_err(|e| WasmError::Engine(e.to_string()))?;
        }
        Ok(Self {
            optimizing,
            baseline,
            compiled: Mutex::default(),
            tier_up_turn: Arc::default(),
            config,
            host_gone,
        })
    }

    /// Reads, checks, compiles (or loads from the cache), links and asks the module for its
    /// info and its verdict on the settings.
    pub fn load(&self, spec: &ModuleSpec) -> Result<WasmPolicy, WasmError> {
        let path = spec.path.display().to_string();
        if spec.memory_limit > self.config.max_memory {
            return Err(WasmError::MemoryLimit {
                limit: spec.memory_limit,
                max: self.config.max_memory,
            });
        }
        let bytes = std::fs::read(&spec.path).map_err(|error| WasmError::Read {
            path: path.clone(),
            error,
        })?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &spec.sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(WasmError::Checksum {
                path,
                expected: expected.clone(),
                actual: digest,
            });
        }
        let module = {
            // Held while compiling, so that a second load of the same module waits and reuses.
            let mut compiled = self
                .compiled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(module) = compiled.get(&digest) {
                Arc::clone(module)
            } else {
                let module = self.compile(bytes, &digest, &path)?;
                compiled.insert(digest, Arc::clone(&module));
                module
            }
        };
        let mut policy = WasmPolicy {
            name: Arc::from(spec.name.as_str()),
            module,
            settings: settings_nodes(&spec.settings),
            timeout: spec.timeout,
            memory_limit: spec.memory_limit,
            mutating: false,
        };
        let load_error = |error: PolicyError| WasmError::Load {
            path: path.clone(),
            error: error.to_string(),
        };
        policy.mutating = policy
            .call(|bindings, store| bindings.call_info(store))
            .map_err(load_error)?
            .mutating;
        let settings = policy.settings.clone();
        policy
            .call(|bindings, store| bindings.call_validate_settings(store, &settings))
            .map_err(load_error)?
            .map_err(|error| WasmError::Settings {
                path: path.clone(),
                error,
            })?;
        Ok(policy)
    }
}

impl WasmHost {
    /// The module's code: optimised from the cache, else baseline now and optimised later
    /// when tiered, else optimised now.
    fn compile(&self, bytes: Vec<u8>, digest: &str, path: &str) -> Result<Arc<Module>, WasmError> {
        let cache_dir = self.config.cache_dir.as_deref();
        let contract = |error| WasmError::Contract {
            path: path.to_owned(),
            error,
        };
        let compile_error = |error| WasmError::Compile {
            path: path.to_owned(),
            error,
        };
        let optimized = |component: Component| {
            Ok(Arc::new(Module {
                linked: RwLock::new(self.optimizing.link(&component).map_err(contract)?),
                optimized: AtomicBool::new(true),
            }))
        };
        if let Some(component) = cache::lookup(&self.optimizing.engine, digest, cache_dir) {
            return optimized(component);
        }
        let Some(baseline) = &self.baseline else {
            return optimized(
                cache::compile(&self.optimizing.engine, &bytes, digest, cache_dir)
                    .map_err(compile_error)?,
            );
        };
        let component =
            cache::compile(&baseline.engine, &bytes, digest, None).map_err(compile_error)?;
        let module = Arc::new(Module {
            linked: RwLock::new(baseline.link(&component).map_err(contract)?),
            optimized: AtomicBool::new(false),
        });
        TierUp {
            module: Arc::downgrade(&module),
            bytes,
            digest: digest.to_owned(),
            path: path.to_owned(),
            optimizing: self.optimizing.clone(),
            cache_dir: self.config.cache_dir.clone(),
            turn: Arc::clone(&self.tier_up_turn),
            host_gone: Arc::clone(&self.host_gone),
        }
        .spawn();
        Ok(module)
    }
}

/// A loaded policy module.
pub struct WasmPolicy {
    name: Arc<str>,
    module: Arc<Module>,
    /// The settings as the typed values every evaluation gets: converted once, at load.
    settings: Arc<[JsonNode]>,
    timeout: Duration,
    memory_limit: usize,
    mutating: bool,
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("name", &self.name)
            .field("mutating", &self.mutating)
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .finish_non_exhaustive()
    }
}

impl WasmPolicy {
    /// Whether the policy runs the optimising compiler's code (see [`HostConfig::tiered`]).
    pub fn optimized(&self) -> bool {
        self.module.optimized.load(Ordering::Acquire)
    }

    /// Runs `f` on a fresh instance with the deadline and memory limit, mapping every way a
    /// guest can fail to a `PolicyError`.
    fn call<R>(
        &self,
        f: impl FnOnce(&bindings::Policy, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyError> {
        let state = HostState {
            wasi: None,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: self.memory_limit,
                exceeded: false,
            },
            policy: Arc::clone(&self.name),
            logged: 0,
        };
        let linked = self.module.current();
        let mut store = Store::new(&linked.engine, state);
        store.limiter(|state| &mut state.limiter);
        let ticks = self
            .timeout
            .as_micros()
            .div_ceil(EPOCH_TICK.as_micros())
            .max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        let result = linked
            .pre
            .instantiate(&mut store)
            .and_then(|bindings| f(&bindings, &mut store));
        if let Some(wasi) = &store.data().wasi {
            wasi.log_output(&self.name);
        }
        result.map_err(|error| self.classify(&error, store.data().limiter.exceeded))
    }

    fn classify(&self, error: &wasmtime::Error, out_of_memory: bool) -> PolicyError {
        if out_of_memory {
            return PolicyError::OutOfMemory(format!(
                "linear memory may not grow past {} bytes",
                self.memory_limit
            ));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PolicyError::Timeout(self.timeout),
            Some(trap) => PolicyError::Trap(trap.to_string()),
            None => PolicyError::Trap(format!("{error:#}")),
        }
    }
}

impl Policy for WasmPolicy {
    fn mutating(&self) -> bool {
        self.mutating
    }

    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let outcome = self
            .call(|bindings, store| {
                let review = store.data_mut().table.push(Reviewed(request.clone()))?;
                bindings.call_evaluate(store, review, &self.settings)
            })?
            .map_err(PolicyError::Reported)?;
        review::outcome(outcome, self.mutating)
    }
}

/// Settings as the contract's typed values.
fn settings_nodes(settings: &serde_json::Value) -> Arc<[JsonNode]> {
    use initguard_core::tree::{Node, Tree};
    Tree::from(settings)
        .0
        .into_iter()
        .map(|node| match node {
            Node::Null => JsonNode::Null,
            Node::Boolean(b) => JsonNode::Boolean(b),
            Node::Integer(i) => JsonNode::Integer(i),
            Node::Float(f) => JsonNode::Float(f),
            Node::Text(s) => JsonNode::Text(s),
            Node::Array(items) => JsonNode::Array(items),
            Node::Object(fields) => JsonNode::Object(fields),
        })
        .collect()
}

/// The hex SHA-256 of a file, for `sha256:` in config.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}
