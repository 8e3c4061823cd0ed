//! Renderings of a [`CheckReport`]: text for people, JSON for tools, JUnit and SARIF for CI.

use std::fmt::Write as _;
use std::io;

use clap::ValueEnum;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;

use crate::check::{CheckReport, Checked, Finding, OWN_RULES, ObjectReport, Severity, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Sarif,
}

/// Writes `report` in `format` to `out`.
pub fn render(report: &CheckReport, format: Format, out: &mut dyn io::Write) -> io::Result<()> {
    match format {
        Format::Text | Format::Json => {
            let mut stream = Stream::begin(format, out)?;
            for object in &report.objects {
                stream.object(object)?;
            }
            stream.end(&report.checked)
        }
        Format::Junit => out.write_all(junit(report).as_bytes()),
        Format::Sarif => out.write_all(sarif(report).as_bytes()),
    }
}

/// Whether `format` can be written object by object, as `check` judges them (JUnit and SARIF
/// group results, so they need them all first).
pub fn streams(format: Format) -> bool {
    matches!(format, Format::Text | Format::Json)
}

/// A text or JSON report written as objects are judged. The JSON is one object, `objects`
/// first and `summary` last, so that it can be written before the summary is known.
pub struct Stream<'w> {
    format: Format,
    out: &'w mut dyn io::Write,
    objects: usize,
}

impl std::fmt::Debug for Stream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("format", &self.format)
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

impl<'w> Stream<'w> {
    pub fn begin(format: Format, out: &'w mut dyn io::Write) -> io::Result<Self> {
        if format == Format::Json {
            out.write_all(b"{\n  \"objects\": [")?;
        }
        Ok(Self {
            format,
            out,
            objects: 0,
        })
    }

    pub fn object(&mut self, object: &ObjectReport) -> io::Result<()> {
        self.objects += 1;
        if self.format == Format::Text {
            return text_object(object, self.out);
        }
        if self.objects > 1 {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"\n    ")?;
        write_indented(self.out, object, "    ")
    }

    pub fn end(self, checked: &Checked) -> io::Result<()> {
        if self.format == Format::Text {
            return text_end(checked, self.out);
        }
        let out = self.out;
        out.write_all(if self.objects > 0 {
            b"\n  ],\n"
        } else {
            b"],\n"
        })?;
        let errors: Vec<String> = checked
            .input_errors
            .iter()
            .map(ToString::to_string)
            .collect();
        out.write_all(b"  \"input_errors\": ")?;
        write_indented(out, &errors, "  ")?;
        if !checked.skipped.is_empty() {
            out.write_all(b",\n  \"skipped\": ")?;
            write_indented(out, &checked.skipped, "  ")?;
        }
        out.write_all(b",\n  \"summary\": ")?;
        write_indented(out, &checked.summary, "  ")?;
        out.write_all(b"\n}\n")
    }
}

/// `value` as pretty JSON, its lines after the first indented by `indent`.
fn write_indented(
    out: &mut dyn io::Write,
    value: &impl serde::Serialize,
    indent: &str,
) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    for (number, line) in text.lines().enumerate() {
        if number > 0 {
            out.write_all(b"\n")?;
            out.write_all(indent.as_bytes())?;
        }
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn location(object: &ObjectReport) -> String {
    let mut location = format!(
        "{}:{} (document {}",
        object.source, object.line, object.document
    );
    if let Some(item) = object.item {
        let _ = write!(location, ", item {item}");
    }
    location + ")"
}

fn title(object: &ObjectReport) -> String {
    match &object.namespace {
        Some(namespace) => format!("{} {namespace}/{}", object.kind, object.name),
        None => format!("{} {}", object.kind, object.name),
    }
}

fn finding_line(finding: &Finding) -> String {
    let severity = match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "audit",
    };
    let rule = finding.rule.as_deref().unwrap_or("-");
    let what = match &finding.path {
        Some(path) => format!("{path}: {}", finding.message),
        None => finding.message.clone(),
    };
    format!("  {severity:<7} {rule:<7} {what} [{}]", finding.policy)
}

fn text_object(object: &ObjectReport, out: &mut dyn io::Write) -> io::Result<()> {
    let label = match object.verdict {
        Verdict::Denied => "DENY",
        Verdict::Skipped => "SKIP",
        Verdict::Allowed
            if object
                .findings
                .iter()
                .any(|f| f.severity == Severity::Warning) =>
        {
            "WARN"
        }
        Verdict::Allowed => "PASS",
    };
    write!(out, "{label} {}  {}", title(object), location(object))?;
    if let Some(reason) = &object.reason {
        write!(out, ": {reason}")?;
    }
    writeln!(out)?;
    for finding in &object.findings {
        writeln!(out, "{}", finding_line(finding))?;
    }
    if let Some(patch) = &object.patch {
        writeln!(
            out,
            "  patch   {} operation(s) from the mutating policies",
            patch.0.len()
        )?;
    }
    Ok(())
}

fn text_end(checked: &Checked, out: &mut dyn io::Write) -> io::Result<()> {
    for skipped in &checked.skipped {
        writeln!(out, "SKIP {skipped}")?;
    }
    for error in &checked.input_errors {
        writeln!(out, "ERROR {error}")?;
    }
    let s = &checked.summary;
    writeln!(
        out,
        "\n{} objects: {} allowed, {} denied, {} skipped; {} errors, {} warnings{}",
        s.objects,
        s.allowed,
        s.denied,
        s.skipped,
        s.errors,
        s.warnings,
        if s.input_errors > 0 {
            format!("; {} input errors", s.input_errors)
        } else {
            String::new()
        }
    )
}

fn junit(report: &CheckReport) -> String {
    let mut junit = Report::new("initguard check");
    let mut suites: Vec<TestSuite> = Vec::new();
    for object in &report.objects {
        if object.verdict == Verdict::Skipped {
            continue;
        }
        let status = if object.verdict == Verdict::Denied {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let errors: Vec<String> = object
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(finding_line)
                .collect();
            status.set_message(format!("denied ({} errors)", errors.len()));
            status.set_description(errors.join("\n"));
            status
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("{} ({})", title(object), location(object)), status);
        case.set_classname(object.source.clone())
            .set_time(object.duration);
        let warnings: Vec<String> = object
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(finding_line)
            .collect();
        if !warnings.is_empty() {
            case.set_system_out(warnings.join("\n"));
        }
        if let Some(suite) = suites.iter_mut().find(|s| s.name.as_str() == object.source) {
            suite.add_test_case(case);
        } else {
            let mut suite = TestSuite::new(object.source.clone());
            suite.add_test_case(case);
            suites.push(suite);
        }
    }
    if !report.checked.input_errors.is_empty() {
        let mut suite = TestSuite::new("input errors");
        for error in &report.checked.input_errors {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.to_string());
            suite.add_test_case(TestCase::new(error.to_string(), status));
        }
        suites.push(suite);
    }
    junit.add_test_suites(suites);
    junit.to_string().unwrap_or_default()
}

fn sarif(report: &CheckReport) -> String {
    let builtin = initguard_rules::rules()
        .map(|rule| json!({"id": rule.id, "name": rule.policy, "shortDescription": {"text": rule.summary}}));
    let own = OWN_RULES
        .iter()
        .map(|rule| json!({"id": rule.id, "name": "initguard", "shortDescription": {"text": rule.summary}}));
    let rules: Vec<_> = builtin.chain(own).collect();
    let mut results = Vec::new();
    for object in &report.objects {
        for finding in &object.findings {
            let level = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "note",
            };
            let message = match &finding.path {
                Some(path) => format!(
                    "{} {}: {path}: {}",
                    title(object),
                    finding.policy,
                    finding.message
                ),
                None => format!("{} {}: {}", title(object), finding.policy, finding.message),
            };
            let mut result = json!({
                "level": level,
                "message": {"text": message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": object.source},
                    "region": {"startLine": object.line}
                }}],
            });
            if let Some(rule) = &finding.rule {
                result["ruleId"] = json!(rule);
            }
            results.push(result);
        }
    }
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "initguard", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&sarif).unwrap_or_default() + "\n"
}
