//! SARIF 2.1.0: one result per code site that touched shared memory, for code-scanning tools
//! (GitHub code scanning, IDE viewers) to show at the source line.
//!
//! A code site is the innermost source frame of an access (function, file, line); its result
//! names what was shared, the call pairs and how many tests. Rules are the kinds of sharing:
//! a static variable, a heap object of a slab cache, a per-CPU variable of another CPU, other
//! kernel memory, user memory, and false sharing (one cache line, no common byte).

use crate::Idempotence;
use commuter_scan::ConflictsFile;
use commuter_scan::schema::{CodeSite, Location, What};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The SARIF version and the schema it is checked against.
const SARIF_VERSION: &str = "2.1.0";
const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A kind of sharing: one SARIF rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    Static,
    Slab,
    Percpu,
    Dynamic,
    User,
    FalseSharing,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Static,
        Rule::Slab,
        Rule::Percpu,
        Rule::Dynamic,
        Rule::User,
        Rule::FalseSharing,
    ];

    fn of(what: &What) -> Rule {
        match what {
            What::Static { .. } | What::Section { .. } => Rule::Static,
            What::Slab { .. } => Rule::Slab,
            What::Percpu { .. } => Rule::Percpu,
            What::UserStatic { .. } => Rule::User,
            What::Dynamic { region, .. } if region.name() == "user" => Rule::User,
            What::Dynamic { .. } | What::Unknown => Rule::Dynamic,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Rule::Static => "shared-static-variable",
            Rule::Slab => "shared-heap-object",
            Rule::Percpu => "shared-percpu-variable",
            Rule::Dynamic => "shared-kernel-memory",
            Rule::User => "shared-user-memory",
            Rule::FalseSharing => "false-sharing",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Rule::Static => {
                "Two commutative operations touched one static variable, one of them writing: they cannot scale on a many-core machine."
            }
            Rule::Slab => {
                "Two commutative operations touched one heap object (named by its slab cache), one of them writing."
            }
            Rule::Percpu => {
                "Two commutative operations touched one per-CPU variable, one of them writing: one CPU reached into another's data."
            }
            Rule::Dynamic => {
                "Two commutative operations touched the same dynamically allocated kernel memory (page allocator, vmalloc, page metadata), one of them writing."
            }
            Rule::User => {
                "Two commutative operations touched the same user-space memory, one of them writing."
            }
            Rule::FalseSharing => {
                "Two commutative operations touched one cache line, one of them writing, with no byte in common: false sharing."
            }
        }
    }
}

/// Everything known about one (rule, code site).
#[derive(Default)]
struct Finding {
    /// What was shared, with counts.
    whats: BTreeMap<String, usize>,
    /// Tests per call pair.
    pairs: BTreeMap<String, BTreeSet<String>>,
    /// The site's full label (inlined-into function included).
    label: String,
}

/// Where a code site is in the source: innermost frame's function, file and line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SourcePoint {
    function: String,
    file: Option<String>,
    line: Option<u32>,
}

fn source_point(site: &CodeSite) -> SourcePoint {
    match site.frames.first() {
        Some(f) => SourcePoint {
            function: f.function.clone().unwrap_or_else(|| "??".into()),
            file: f.file.clone(),
            line: f.line,
        },
        None => SourcePoint {
            function: site.label(),
            file: None,
            line: None,
        },
    }
}

/// The SARIF log of a run: pretty JSON with a final newline. With the suite's idempotence
/// (`idem`), each message also says how many of its tests are on paths where a call is
/// idempotent.
pub fn sarif(conflicts: &ConflictsFile, idem: Option<&Idempotence>) -> String {
    let mut findings: BTreeMap<(Rule, SourcePoint), Finding> = BTreeMap::new();
    for t in &conflicts.tests {
        let pair = t.calls.join("/");
        let shared = t.shared.iter().map(|l| (l, None));
        let lines = t
            .false_sharing
            .iter()
            .map(|l| (l, Some(Rule::FalseSharing)));
        for (loc, rule) in shared.chain(lines) {
            let rule = rule.unwrap_or_else(|| Rule::of(&loc.what));
            for site in sites(loc) {
                let f = findings.entry((rule, source_point(site))).or_default();
                *f.whats.entry(loc.what.label()).or_default() += 1;
                f.pairs
                    .entry(pair.clone())
                    .or_default()
                    .insert(t.id.clone());
                if f.label.is_empty() {
                    f.label = site.label();
                }
            }
        }
    }
    let results = findings
        .iter()
        .map(|((rule, point), f)| result(*rule, point, f, idem))
        .collect();
    let log = Log {
        schema: SARIF_SCHEMA,
        version: SARIF_VERSION,
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "commuter",
                    version: env!("CARGO_PKG_VERSION"),
                    rules: Rule::ALL.iter().map(|r| rule_descriptor(*r)).collect(),
                },
            },
            original_uri_base_ids: BTreeMap::from([(
                SOURCE_ROOT,
                UriBase {
                    description: Message {
                        text: format!(
                            "The source tree of {}: paths are relative to it.",
                            target_name(conflicts)
                        ),
                    },
                },
            )]),
            results,
        }],
    };
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_default();
    s.push('\n');
    s
}

/// Both calls' sites of a location (a site on both sides counts once).
fn sites(loc: &Location) -> Vec<&CodeSite> {
    let mut sites: Vec<&CodeSite> = loc.a.sites.iter().chain(&loc.b.sites).collect();
    sites.sort_by_key(|s| s.pc);
    sites.dedup_by_key(|s| s.pc);
    sites
}

const SOURCE_ROOT: &str = "SRCROOT";

fn target_name(c: &ConflictsFile) -> String {
    match &c.target.version {
        Some(v) => format!("{} {v}", c.target.name),
        None => c.target.name.clone(),
    }
}

fn rule_descriptor(rule: Rule) -> RuleDescriptor {
    RuleDescriptor {
        id: rule.id(),
        short_description: Message {
            text: rule.description().into(),
        },
        default_configuration: Configuration { level: "warning" },
    }
}

fn result(rule: Rule, point: &SourcePoint, f: &Finding, idem: Option<&Idempotence>) -> SarifResult {
    let tests: usize = f.pairs.values().map(BTreeSet::len).sum();
    let pairs: Vec<String> = f
        .pairs
        .iter()
        .map(|(p, ids)| format!("{p} ({})", ids.len()))
        .collect();
    let whats: Vec<&str> = f.whats.keys().map(String::as_str).collect();
    let mut text = format!(
        "`{}` touched memory that commutative calls shared ({}) in {tests} test{}: {}.",
        f.label,
        whats.join(", "),
        if tests == 1 { "" } else { "s" },
        pairs.join(", ")
    );
    if let Some(idem) = idem {
        let on_idempotent = f
            .pairs
            .values()
            .flatten()
            .filter(|id| !idem.slots(id).is_empty())
            .count();
        if on_idempotent > 0 {
            text.push_str(&format!(
                " {on_idempotent} of them conflicted on paths where a call is idempotent (it can skip writing what is already there)."
            ));
        }
    }
    let physical = match (&point.file, point.line) {
        (Some(file), Some(line)) => Some(PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: file.trim_start_matches('/').to_string(),
                uri_base_id: SOURCE_ROOT,
            },
            region: Region { start_line: line },
        }),
        _ => None,
    };
    SarifResult {
        rule_id: rule.id(),
        level: "warning",
        message: Message { text },
        locations: vec![ResultLocation {
            physical_location: physical,
            logical_locations: vec![LogicalLocation {
                name: point.function.clone(),
                kind: "function",
            }],
        }],
        partial_fingerprints: BTreeMap::from([(
            "commuterSite/v1",
            format!(
                "{}:{}:{}:{}",
                rule.id(),
                point.function,
                point.file.as_deref().unwrap_or(""),
                point.line.unwrap_or(0)
            ),
        )]),
    }
}

// The SARIF subset written, in the schema's field names.

#[derive(Serialize)]
struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    original_uri_base_ids: BTreeMap<&'static str, UriBase>,
    results: Vec<SarifResult>,
}

#[derive(Serialize)]
struct UriBase {
    description: Message,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    rules: Vec<RuleDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleDescriptor {
    id: &'static str,
    short_description: Message,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Message {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: &'static str,
    level: &'static str,
    message: Message,
    locations: Vec<ResultLocation>,
    partial_fingerprints: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultLocation {
    #[serde(skip_serializing_if = "Option::is_none")]
    physical_location: Option<PhysicalLocation>,
    logical_locations: Vec<LogicalLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

#[derive(Serialize)]
struct LogicalLocation {
    name: String,
    kind: &'static str,
}
