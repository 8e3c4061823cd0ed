//! What a policy reads of a pod spec without the Kubernetes types: the fields of containers
//! that policies commonly look at, as one text and a layout of offsets into it.
//!
//! The host builds a [`Containers`] table from the pod template it has parsed for every policy,
//! and it crosses into a WebAssembly guest as two copies (the text and the layout) however many
//! strings it holds: the canonical ABI would otherwise call into the guest's allocator once per
//! string. The guest checks the layout once and reads borrowed [`Container`]s from it, without
//! allocating. Natively the same table is built from [`crate::Workload::views`], so a policy's
//! `cargo test` reads what it reads in the cluster, through the same code.
//!
//! The layout, which `initguard:policy`'s `container-table` documents for other SDKs: value 0
//! is the number of containers `n`; then `n` headers of [`HEADER`] values each (the kind: 0
//! init, 1 app, 2 ephemeral; the index; the start and length in the text of the path, name,
//! image, imagePullPolicy and restartPolicy, a start of `u32::MAX` meaning absent; where the
//! container's entries begin, counted in entries; and how many command, args, requests and
//! limits entries it has); then the entries, a start and a length each. Requests and limits
//! take two entries per resource: its name and the quantity as written.

use std::fmt;
use std::slice::ChunksExact;

use crate::path::FieldPath;

/// The three lists of containers a pod spec holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `initContainers`.
    #[default]
    Init,
    /// `containers`.
    App,
    /// `ephemeralContainers`.
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field holding containers of this kind.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::Init => "initContainers",
            Self::App => "containers",
            Self::Ephemeral => "ephemeralContainers",
        }
    }

    fn code(self) -> u32 {
        match self {
            Self::Init => 0,
            Self::App => 1,
            Self::Ephemeral => 2,
        }
    }

    fn of_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Init),
            1 => Some(Self::App),
            2 => Some(Self::Ephemeral),
            _ => None,
        }
    }
}

/// Values per container header in the layout.
pub const HEADER: usize = 17;
/// The start of an absent optional string.
const ABSENT: u32 = u32::MAX;

// Positions in a header.
const KIND: usize = 0;
const INDEX: usize = 1;
const PATH: usize = 2;
const NAME: usize = 4;
const IMAGE: usize = 6;
const IMAGE_PULL_POLICY: usize = 8;
const RESTART_POLICY: usize = 10;
const ENTRIES_AT: usize = 12;
const COMMAND: usize = 13;
const ARGS: usize = 14;
const REQUESTS: usize = 15;
const LIMITS: usize = 16;

/// Every container of a pod spec, init first, then app, then ephemeral; see the module's
/// documentation for the layout.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Containers {
    text: String,
    layout: Vec<u32>,
}

/// A text and layout that do not make a [`Containers`] table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the container table does not hold together: {0}")]
pub struct LayoutError(&'static str);

impl Containers {
    /// The table of a text and layout received from elsewhere (the host), checked once so
    /// that reading it cannot fail.
    pub fn from_parts(text: String, layout: Vec<u32>) -> Result<Self, LayoutError> {
        let table = Self { text, layout };
        table.check()?;
        Ok(table)
    }

    /// The text and layout, to send elsewhere.
    pub fn into_parts(self) -> (String, Vec<u32>) {
        (self.text, self.layout)
    }

    /// How many containers there are.
    pub fn len(&self) -> usize {
        self.layout.first().map_or(0, |&n| n as usize)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The containers in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            table: self,
            headers: self.headers().chunks_exact(HEADER),
        }
    }

    fn headers(&self) -> &[u32] {
        self.layout.get(1..=self.len() * HEADER).unwrap_or_default()
    }

    fn entries(&self) -> &[u32] {
        self.layout
            .get(1 + self.len() * HEADER..)
            .unwrap_or_default()
    }

    fn text_of(&self, start: u32, len: u32) -> &str {
        let start = start as usize;
        &self.text[start..start + len as usize]
    }

    /// Every offset in bounds and on a character boundary, every kind known, every count
    /// within the entries: what makes the accessors' slicing infallible.
    fn check(&self) -> Result<(), LayoutError> {
        let Some(&n) = self.layout.first() else {
            // No layout at all: no containers.
            return Ok(());
        };
        let headers_end = (n as usize)
            .checked_mul(HEADER)
            .and_then(|len| len.checked_add(1))
            .filter(|&end| end <= self.layout.len())
            .ok_or(LayoutError("more containers than headers"))?;
        let entries = self.layout.get(headers_end..).unwrap_or_default();
        if entries.len() % 2 != 0 {
            return Err(LayoutError("an entry without its length"));
        }
        let span = |start: u32, len: u32| {
            let start = start as usize;
            start
                .checked_add(len as usize)
                .is_some_and(|end| self.text.get(start..end).is_some())
        };
        for pair in entries.chunks_exact(2) {
            if !span(pair[0], pair[1]) {
                return Err(LayoutError("an entry outside the text"));
            }
        }
        let entry_count = entries.len() / 2;
        for header in self.layout[1..headers_end].chunks_exact(HEADER) {
            if ContainerKind::of_code(header[KIND]).is_none() {
                return Err(LayoutError("a container of no known kind"));
            }
            for at in [PATH, NAME] {
                if !span(header[at], header[at + 1]) {
                    return Err(LayoutError("a path or name outside the text"));
                }
            }
            for at in [IMAGE, IMAGE_PULL_POLICY, RESTART_POLICY] {
                let absent = header[at] == ABSENT && header[at + 1] == 0;
                if !absent && !span(header[at], header[at + 1]) {
                    return Err(LayoutError("a field outside the text"));
                }
            }
            let used = [COMMAND, ARGS]
                .iter()
                .map(|&at| u64::from(header[at]))
                .chain(
                    [REQUESTS, LIMITS]
                        .iter()
                        .map(|&at| 2 * u64::from(header[at])),
                )
                .sum::<u64>();
            if u64::from(header[ENTRIES_AT]) + used > entry_count as u64 {
                return Err(LayoutError("a container with more entries than there are"));
            }
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Containers {
    type Item = Container<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The containers of a [`Containers`] table, in order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    table: &'a Containers,
    headers: ChunksExact<'a, u32>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Container<'a>;

    fn next(&mut self) -> Option<Container<'a>> {
        Some(Container {
            table: self.table,
            header: self.headers.next()?,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.headers.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl fmt::Debug for Containers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Builds a [`Containers`] table, one container at a time.
#[derive(Debug, Default)]
pub struct ContainersBuilder {
    text: String,
    headers: Vec<u32>,
    entries: Vec<u32>,
    count: usize,
}

/// The fields of one container, borrowed, for [`ContainersBuilder::push`]; see [`Container`]
/// for what each is.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct Fields<'a> {
    pub kind: ContainerKind,
    pub index: usize,
    pub path: &'a FieldPath,
    pub name: &'a str,
    pub image: Option<&'a str>,
    pub image_pull_policy: Option<&'a str>,
    pub restart_policy: Option<&'a str>,
    pub command: &'a [String],
    pub args: &'a [String],
}

impl ContainersBuilder {
    /// Adds a container with its resource requests and limits, by name, as written.
    pub fn push<'a>(
        &mut self,
        fields: &Fields<'_>,
        requests: impl IntoIterator<Item = (&'a str, &'a str)>,
        limits: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        use fmt::Write as _;
        self.count += 1;
        let entries_at = self.entries.len() / 2;
        let path_start = self.text.len();
        // Writing to a String cannot fail.
        let _ = write!(self.text, "{}", fields.path);
        let path = [offset(path_start), offset(self.text.len() - path_start)];
        let name = self.span(fields.name);
        let image = self.optional(fields.image);
        let image_pull_policy = self.optional(fields.image_pull_policy);
        let restart_policy = self.optional(fields.restart_policy);
        for string in fields.command.iter().chain(fields.args) {
            let span = self.span(string);
            self.entries.extend(span);
        }
        let requests = self.pairs(requests);
        let limits = self.pairs(limits);
        self.headers
            .extend([fields.kind.code(), offset(fields.index)]);
        self.headers.extend(path);
        self.headers.extend(name);
        self.headers.extend(image);
        self.headers.extend(image_pull_policy);
        self.headers.extend(restart_policy);
        self.headers.extend([
            offset(entries_at),
            offset(fields.command.len()),
            offset(fields.args.len()),
            offset(requests),
            offset(limits),
        ]);
    }

    /// The table; `None` when its text or layout outgrows the `u32` offsets, which no review
    /// a server accepts comes near (4 GiB of container text).
    pub fn finish(self) -> Option<Containers> {
        let fits = |n: usize| u32::try_from(n).is_ok();
        if !fits(self.text.len()) || !fits(1 + self.headers.len() + self.entries.len()) {
            return None;
        }
        let mut layout = Vec::with_capacity(1 + self.headers.len() + self.entries.len());
        layout.push(offset(self.count));
        layout.extend(self.headers);
        layout.extend(self.entries);
        Some(Containers {
            text: self.text,
            layout,
        })
    }

    /// Adds resources as entries, returning how many.
    fn pairs<'a>(&mut self, list: impl IntoIterator<Item = (&'a str, &'a str)>) -> usize {
        let mut count = 0;
        for (name, quantity) in list {
            let name = self.span(name);
            let quantity = self.span(quantity);
            self.entries.extend(name.into_iter().chain(quantity));
            count += 1;
        }
        count
    }

    fn span(&mut self, string: &str) -> [u32; 2] {
        let start = self.text.len();
        self.text.push_str(string);
        [offset(start), offset(string.len())]
    }

    fn optional(&mut self, string: Option<&str>) -> [u32; 2] {
        string.map_or([ABSENT, 0], |string| self.span(string))
    }
}

/// An offset or count as the layout's `u32`: exact whenever [`ContainersBuilder::finish`]
/// returns a table, since every offset is at most the text's length.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One container of a [`Containers`] table: the fields policies commonly read, borrowed.
#[derive(Clone, Copy)]
pub struct Container<'a> {
    table: &'a Containers,
    header: &'a [u32],
}

impl<'a> Container<'a> {
    /// Which list the container is in.
    pub fn kind(&self) -> ContainerKind {
        // Checked when the table was made.
        ContainerKind::of_code(self.header[KIND]).unwrap_or_default()
    }

    /// Its index in that list.
    pub fn index(&self) -> usize {
        self.header[INDEX] as usize
    }

    /// Its path in apiserver notation: `spec.template.spec.initContainers[0]`.
    pub fn path(&self) -> &'a str {
        self.string(PATH)
    }

    /// Its name.
    pub fn name(&self) -> &'a str {
        self.string(NAME)
    }

    /// Its image, as written.
    pub fn image(&self) -> Option<&'a str> {
        self.optional(IMAGE)
    }

    /// `imagePullPolicy`, as written.
    pub fn image_pull_policy(&self) -> Option<&'a str> {
        self.optional(IMAGE_PULL_POLICY)
    }

    /// `restartPolicy`: `Always` makes an init container a sidecar.
    pub fn restart_policy(&self) -> Option<&'a str> {
        self.optional(RESTART_POLICY)
    }

    /// The entrypoint.
    pub fn command(&self) -> Strings<'a> {
        self.strings(0, self.header[COMMAND])
    }

    /// Its arguments.
    pub fn args(&self) -> Strings<'a> {
        self.strings(self.header[COMMAND], self.header[ARGS])
    }

    /// Resource requests, by resource name, with quantities as written.
    pub fn requests(&self) -> Pairs<'a> {
        Pairs(self.strings(
            self.header[COMMAND] + self.header[ARGS],
            2 * self.header[REQUESTS],
        ))
    }

    /// Resource limits, likewise.
    pub fn limits(&self) -> Pairs<'a> {
        Pairs(self.strings(
            self.header[COMMAND] + self.header[ARGS] + 2 * self.header[REQUESTS],
            2 * self.header[LIMITS],
        ))
    }

    /// The path of one of the container's fields: `spec.initContainers[0].image`.
    pub fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path())
    }

    /// The JSON pointer of the container (`/spec/initContainers/0`), for patches.
    pub fn pointer(&self) -> String {
        // The host writes paths of fields and indices only, which always parse.
        FieldPath::parse(self.path())
            .map(|path| path.to_json_pointer())
            .unwrap_or_default()
    }

    fn string(&self, at: usize) -> &'a str {
        self.table.text_of(self.header[at], self.header[at + 1])
    }

    fn optional(&self, at: usize) -> Option<&'a str> {
        (self.header[at] != ABSENT).then(|| self.string(at))
    }

    /// `count` entries from the `skip`-th of the container's.
    fn strings(&self, skip: u32, count: u32) -> Strings<'a> {
        let start = 2 * (self.header[ENTRIES_AT] + skip) as usize;
        let spans = &self.table.entries()[start..start + 2 * count as usize];
        Strings {
            table: self.table,
            spans: spans.chunks_exact(2),
        }
    }
}

impl fmt::Debug for Container<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("kind", &self.kind())
            .field("index", &self.index())
            .field("path", &self.path())
            .field("name", &self.name())
            .field("image", &self.image())
            .field("image_pull_policy", &self.image_pull_policy())
            .field("restart_policy", &self.restart_policy())
            .field("command", &self.command().collect::<Vec<_>>())
            .field("args", &self.args().collect::<Vec<_>>())
            .field("requests", &self.requests().collect::<Vec<_>>())
            .field("limits", &self.limits().collect::<Vec<_>>())
            .finish()
    }
}

/// Strings of a container: its command or args.
#[derive(Clone)]
pub struct Strings<'a> {
    table: &'a Containers,
    spans: ChunksExact<'a, u32>,
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let span = self.spans.next()?;
        Some(self.table.text_of(span[0], span[1]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Strings<'_> {}

impl fmt::Debug for Strings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// Resource names and quantities of a container: its requests or limits.
#[derive(Clone)]
pub struct Pairs<'a>(Strings<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        Some((self.0.next()?, self.0.next()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (low, high) = self.0.size_hint();
        (low / 2, high.map(|high| high / 2))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

impl fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Containers {
        let mut builder = ContainersBuilder::default();
        let path = FieldPath::parse("spec.initContainers[0]").unwrap();
        builder.push(
            &Fields {
                kind: ContainerKind::Init,
                index: 0,
                path: &path,
                name: "clone",
                image: Some("alpine/git:2"),
                image_pull_policy: None,
                restart_policy: Some("Always"),
                command: &["git".to_owned()],
                args: &["clone".to_owned(), "ünï".to_owned()],
            },
            [("cpu", "10m")],
            [("cpu", "1"), ("memory", "1Gi")],
        );
        let path = FieldPath::parse("spec.containers[0]").unwrap();
        builder.push(
            &Fields {
                kind: ContainerKind::App,
                index: 0,
                path: &path,
                name: "web",
                image: None,
                image_pull_policy: Some("Never"),
                restart_policy: None,
                command: &[],
                args: &["-v".to_owned()],
            },
            [],
            [],
        );
        builder.finish().unwrap()
    }

    #[test]
    fn a_table_reads_back_what_was_pushed() {
        let table = table();
        let [init, app] = table.iter().collect::<Vec<_>>()[..] else {
            panic!("{table:?}");
        };
        assert_eq!(init.kind(), ContainerKind::Init);
        assert_eq!(init.path(), "spec.initContainers[0]");
        assert_eq!(init.field("image"), "spec.initContainers[0].image");
        assert_eq!(init.pointer(), "/spec/initContainers/0");
        assert_eq!((init.name(), init.image()), ("clone", Some("alpine/git:2")));
        assert_eq!(init.image_pull_policy(), None);
        assert_eq!(init.restart_policy(), Some("Always"));
        assert_eq!(init.command().collect::<Vec<_>>(), ["git"]);
        assert_eq!(init.args().collect::<Vec<_>>(), ["clone", "ünï"]);
        assert_eq!(init.requests().collect::<Vec<_>>(), [("cpu", "10m")]);
        assert_eq!(init.limits().len(), 2);
        assert_eq!(
            (app.kind(), app.name(), app.image()),
            (ContainerKind::App, "web", None)
        );
        assert_eq!(app.image_pull_policy(), Some("Never"));
        assert_eq!(app.args().collect::<Vec<_>>(), ["-v"]);
        assert_eq!(
            app.requests().len() + app.limits().len() + app.command().len(),
            0
        );
    }

    #[test]
    fn a_table_crosses_as_its_parts() {
        let table = table();
        let (text, layout) = table.clone().into_parts();
        assert_eq!(Containers::from_parts(text, layout).unwrap(), table);
        assert!(
            Containers::from_parts(String::new(), Vec::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parts_that_do_not_hold_together_are_refused() {
        let (text, layout) = table().into_parts();
        let broken = |change: &dyn Fn(&mut String, &mut Vec<u32>)| {
            let (mut text, mut layout) = (text.clone(), layout.clone());
            change(&mut text, &mut layout);
            Containers::from_parts(text, layout)
                .unwrap_err()
                .to_string()
        };
        assert!(broken(&|_, layout| layout[0] = 9).contains("more containers than headers"));
        assert!(broken(&|_, layout| layout[1 + KIND] = 7).contains("no known kind"));
        assert!(broken(&|text, _| text.truncate(3)).contains("outside the text"));
        // Inside the 'ü' of the arg: not a character boundary.
        let inside = u32::try_from(text.find('ü').unwrap() + 1).unwrap();
        let arg = 1 + 2 * HEADER + 2 * 2;
        assert!(broken(&|_, layout| layout[arg] = inside).contains("an entry outside the text"));
        assert!(broken(&|_, layout| layout[1 + LIMITS] = 9).contains("more entries"));
        assert!(
            broken(&|_, layout| {
                layout.pop();
            })
            .contains("without its length")
        );
    }
}
