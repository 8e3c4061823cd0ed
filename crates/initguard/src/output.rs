//! Renderings of a [`CheckReport`]: text for people, JSON for tools, JUnit and SARIF for CI.

use std::fmt::Write as _;
use std::io;

use clap::ValueEnum;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;

use crate::check::{CheckReport, Finding, OWN_RULES, ObjectReport, Severity, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Sarif,
}

/// Writes `report` in `format` to `out` as it goes: a report of many objects is never held
/// whole in memory as text or JSON.
pub fn render(report: &CheckReport, format: Format, out: &mut dyn io::Write) -> io::Result<()> {
    match format {
        Format::Text => text(report, out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Format::Junit => out.write_all(junit(report).as_bytes()),
        Format::Sarif => out.write_all(sarif(report).as_bytes()),
    }
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

fn text(report: &CheckReport, out: &mut dyn io::Write) -> io::Result<()> {
    for object in &report.objects {
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
    }
    for skipped in &report.skipped {
        writeln!(out, "SKIP {skipped}")?;
    }
    for error in &report.input_errors {
        writeln!(out, "ERROR {error}")?;
    }
    let s = &report.summary;
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
    if !report.input_errors.is_empty() {
        let mut suite = TestSuite::new("input errors");
        for error in &report.input_errors {
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
    let builtin = initguard_rules::RULES
        .iter()
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
