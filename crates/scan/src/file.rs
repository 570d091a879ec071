//! Reading and writing `conflicts.json`: version 5 (tables, [`CompactFile`]) is written, or
//! version 6 when a test has three calls, or 7 when an access has a call stack; versions 3 to 7
//! are read into the one in-memory
//! structure ([`ConflictsFile`]).
//!
//! The schema name and version are checked before anything else, so a file of another
//! version gets a version error that says what to do, not a field error.

use std::collections::HashMap;

use commuter_trace_format::record::{Mode, Rw, hex};
use serde::{Deserialize, Serialize};

use crate::schema::{
    Access, CONFLICTS_OLDEST_READ, CONFLICTS_PAIRS_VERSION, CONFLICTS_SCHEMA,
    CONFLICTS_TRIPLES_VERSION, CONFLICTS_VERSION, CodeSite, CompactAccess, CompactFile,
    CompactLocation, CompactSite, CompactTest, ConflictsFile, FIRST_PAIR, Frame, Location,
    Mismatch, Shard, Status, Target, TestConflicts, TestError, What,
};

/// Why a `conflicts.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON of the expected shape.
    #[error("not a conflicts file: {0}")]
    Json(#[from] serde_json::Error),
    /// Some other file.
    #[error("its \"schema\" is {found:?}, expected {CONFLICTS_SCHEMA:?}")]
    Schema {
        /// The schema found.
        found: String,
    },
    /// Written by an incompatible version.
    #[error(
        "conflicts version {found} is not supported (this commuter reads versions {CONFLICTS_OLDEST_READ} to {CONFLICTS_VERSION}); {}",
        version_fix(*found)
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// The file holds what its version cannot (a version 5 file with three calls a test, a
    /// version 6 one with call stacks).
    #[error(
        "conflicts version {version} cannot hold {what} (that needs version {needs}): the file was edited by hand or written by a faulty tool; write it again with `commuter run` or `commuter merge`"
    )]
    Feature {
        /// The version the file says.
        version: u32,
        /// What it holds, e.g. `test "stat_stat_stat_0_0" of 3 calls`.
        what: String,
        /// The oldest version that holds it.
        needs: u32,
    },
    /// A version 5 index that names no entry of its table.
    #[error(
        "{at} refers to entry {index} of the `{table}` table, which has {len} entries: the file is damaged (truncated or edited by hand); write it again with `commuter run` or `commuter merge`"
    )]
    Index {
        /// Where the index is, e.g. `test "stat_stat_0_0", shared[1].a.sites[0]`.
        at: String,
        /// `frames`, `sites` or `objects`.
        table: &'static str,
        /// The index found.
        index: u32,
        /// The table's length.
        len: usize,
    },
}

/// What to do about a `conflicts.json` of another version.
fn version_fix(found: u32) -> &'static str {
    if found < CONFLICTS_OLDEST_READ {
        // Version 3 stopped naming memory the kernel frees after boot after image symbols, and
        // added per-CPU and region names: an older file's locations cannot be converted.
        "it was written by an older commuter: rerun the tests (`commuter run`) to regenerate it"
    } else {
        "it was written by a newer commuter: read it with that version"
    }
}

impl ConflictsFile {
    /// Parses a `conflicts.json` of version 3 to 7, checking the schema name and version first,
    /// and refusing a file that holds what its version cannot (three calls before 6, call
    /// stacks before 7).
    pub fn from_json(text: &str) -> Result<ConflictsFile, ReadError> {
        #[derive(Deserialize)]
        struct Header {
            schema: String,
            version: u32,
        }
        let h: Header = serde_json::from_str(text)?;
        if h.schema != CONFLICTS_SCHEMA {
            return Err(ReadError::Schema { found: h.schema });
        }
        let mut file = match h.version {
            5..=7 => expand(serde_json::from_str(text)?)?,
            4 => serde_json::from_str(text)?,
            3 => serde_json::from_str::<V3File>(text)?.upgrade(),
            found => return Err(ReadError::Version { found }),
        };
        file.holdable_in(h.version)?;
        file.version = CONFLICTS_VERSION;
        Ok(file)
    }

    /// Version 5 JSON (version 6 when a test has more than two calls): the header and one table
    /// entry or test per line, final newline.
    pub fn to_json(&self) -> String {
        let compact = self.compact();
        let mut s = String::with_capacity(64 * 1024);
        s.push_str(&format!(
            "{{\"schema\":{},\"version\":{},\n\"target\":{}",
            json(&compact.schema),
            compact.version,
            json(&compact.target)
        ));
        if let Some(shard) = &compact.shard {
            s.push_str(&format!(",\n\"shard\":{}", json(shard)));
        }
        array(&mut s, "frames", &compact.frames);
        array(&mut s, "sites", &compact.sites);
        array(&mut s, "objects", &compact.objects);
        array(&mut s, "tests", &compact.tests);
        s.push_str("}\n");
        s
    }

    /// A test with a call stack on some access.
    fn test_with_stack(&self) -> Option<&TestConflicts> {
        self.tests.iter().find(|t| {
            t.shared
                .iter()
                .chain(&t.false_sharing)
                .any(|l| !l.a.stack.is_empty() || !l.b.stack.is_empty())
        })
    }

    fn test_of_more_than_two_calls(&self) -> Option<&TestConflicts> {
        self.tests.iter().find(|t| t.calls.len() > 2)
    }

    /// Whether a file of `version` can hold what this one holds (what a later version added).
    fn holdable_in(&self, version: u32) -> Result<(), ReadError> {
        let refuse = |what: String, needs: u32| {
            Err(ReadError::Feature {
                version,
                what,
                needs,
            })
        };
        if let Some(t) = self.test_of_more_than_two_calls()
            && version < CONFLICTS_TRIPLES_VERSION
        {
            return refuse(
                format!("test {:?} of {} calls", t.id, t.calls.len()),
                CONFLICTS_TRIPLES_VERSION,
            );
        }
        if let Some(t) = self.test_with_stack()
            && version < CONFLICTS_VERSION
        {
            return refuse(format!("call stacks (test {:?})", t.id), CONFLICTS_VERSION);
        }
        Ok(())
    }

    /// The version 5 form: frames, sites and objects in tables, in order of first use, so
    /// that the same tests give the same bytes however they were put together (a whole run,
    /// or the merge of its shards).
    pub fn compact(&self) -> CompactFile {
        let mut t = Tables::default();
        let tests = self
            .tests
            .iter()
            .map(|test| CompactTest {
                id: test.id.clone(),
                calls: test.calls.clone(),
                status: test.status,
                shared: test.shared.iter().map(|l| t.location(l)).collect(),
                false_sharing: test.false_sharing.iter().map(|l| t.location(l)).collect(),
                mismatches: test.mismatches.clone(),
                errors: test.errors.clone(),
            })
            .collect();
        // Pairs only: version 5, the bytes every reader of version 5 reads; stacks need 7.
        let version = if self.test_with_stack().is_some() {
            CONFLICTS_VERSION
        } else if self.test_of_more_than_two_calls().is_some() {
            CONFLICTS_TRIPLES_VERSION
        } else {
            CONFLICTS_PAIRS_VERSION
        };
        CompactFile {
            schema: CONFLICTS_SCHEMA.into(),
            version,
            target: self.target.clone(),
            shard: self.shard.clone(),
            frames: t.frames.into_iter().cloned().collect(),
            sites: t.sites,
            objects: t.objects.into_iter().cloned().collect(),
            tests,
        }
    }
}

/// One value as compact JSON.
fn json(v: &impl Serialize) -> String {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// `,\n"name":[\n` then one item per line.
fn array(s: &mut String, name: &str, items: &[impl Serialize]) {
    s.push_str(",\n\"");
    s.push_str(name);
    s.push_str("\":[");
    for (i, item) in items.iter().enumerate() {
        s.push_str(if i == 0 { "\n" } else { ",\n" });
        s.push_str(&json(item));
    }
    if !items.is_empty() {
        s.push('\n');
    }
    s.push(']');
}

/// The tables being built, with each entry's index.
#[derive(Default)]
struct Tables<'a> {
    frames: Vec<&'a Frame>,
    frame_ix: HashMap<&'a Frame, u32>,
    sites: Vec<CompactSite>,
    site_ix: HashMap<&'a CodeSite, u32>,
    objects: Vec<&'a What>,
    object_ix: HashMap<&'a What, u32>,
}

/// Index of `v` in `table`, added at the end when new.
fn intern<'a, T: Eq + std::hash::Hash>(
    table: &mut Vec<&'a T>,
    ix: &mut HashMap<&'a T, u32>,
    v: &'a T,
) -> u32 {
    *ix.entry(v).or_insert_with(|| {
        table.push(v);
        index(table.len() - 1)
    })
}

/// A table index: the tables are built from in-memory vectors of a few thousand entries.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl<'a> Tables<'a> {
    fn location(&mut self, l: &'a Location) -> CompactLocation {
        CompactLocation {
            addr: l.addr,
            size: l.size,
            slots: l.slots,
            what: intern(&mut self.objects, &mut self.object_ix, &l.what),
            a: self.access(&l.a),
            b: self.access(&l.b),
        }
    }

    fn access(&mut self, a: &'a Access) -> CompactAccess {
        CompactAccess {
            rw: a.rw,
            mode: a.mode,
            sites: a.sites.iter().map(|s| self.site(s)).collect(),
            stack: a.stack.iter().map(|s| self.site(s)).collect(),
        }
    }

    fn site(&mut self, s: &'a CodeSite) -> u32 {
        if let Some(&i) = self.site_ix.get(s) {
            return i;
        }
        let frames = s
            .frames
            .iter()
            .map(|f| intern(&mut self.frames, &mut self.frame_ix, f))
            .collect();
        self.sites.push(CompactSite {
            pc: s.pc,
            mode: s.mode,
            symbol: s.symbol.clone(),
            offset: s.offset,
            frames,
        });
        let i = index(self.sites.len() - 1);
        self.site_ix.insert(s, i);
        i
    }
}

/// A version 5 file with its references resolved, every index checked.
fn expand(c: CompactFile) -> Result<ConflictsFile, ReadError> {
    let get = |table: &'static str, len: usize, index: u32, at: &dyn Fn() -> String| {
        if (index as usize) < len {
            Ok(index as usize)
        } else {
            Err(ReadError::Index {
                at: at(),
                table,
                index,
                len,
            })
        }
    };
    let mut sites = Vec::with_capacity(c.sites.len());
    for (si, s) in c.sites.into_iter().enumerate() {
        let mut frames = Vec::with_capacity(s.frames.len());
        for (fi, &f) in s.frames.iter().enumerate() {
            let i = get("frames", c.frames.len(), f, &|| {
                format!("sites[{si}].frames[{fi}]")
            })?;
            frames.push(c.frames[i].clone());
        }
        sites.push(CodeSite {
            pc: s.pc,
            mode: s.mode,
            symbol: s.symbol,
            offset: s.offset,
            frames,
        });
    }
    let objects = c.objects;
    let locations = |id: &str, field: &str, locs: Vec<CompactLocation>| {
        locs.into_iter()
            .enumerate()
            .map(|(li, l)| {
                let at = |rest: &str| format!("test {id:?}, {field}[{li}].{rest}");
                let what = get("objects", objects.len(), l.what, &|| at("what"))?;
                let refs = |side: &str, field: &str, ix: &[u32]| {
                    ix.iter()
                        .enumerate()
                        .map(|(k, &s)| {
                            get("sites", sites.len(), s, &|| {
                                at(&format!("{side}.{field}[{k}]"))
                            })
                            .map(|i| sites[i].clone())
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                let access = |side: &str, a: CompactAccess| -> Result<Access, ReadError> {
                    Ok(Access {
                        rw: a.rw,
                        mode: a.mode,
                        sites: refs(side, "sites", &a.sites)?,
                        stack: refs(side, "stack", &a.stack)?,
                    })
                };
                Ok(Location {
                    addr: l.addr,
                    size: l.size,
                    slots: l.slots,
                    what: objects[what].clone(),
                    a: access("a", l.a)?,
                    b: access("b", l.b)?,
                })
            })
            .collect::<Result<Vec<_>, ReadError>>()
    };
    let tests = c
        .tests
        .into_iter()
        .map(|t| {
            Ok(TestConflicts {
                shared: locations(&t.id, "shared", t.shared)?,
                false_sharing: locations(&t.id, "false_sharing", t.false_sharing)?,
                id: t.id,
                calls: t.calls,
                status: t.status,
                mismatches: t.mismatches,
                errors: t.errors,
            })
        })
        .collect::<Result<_, ReadError>>()?;
    Ok(ConflictsFile {
        schema: c.schema,
        version: c.version,
        target: c.target,
        shard: c.shard,
        tests,
    })
}

// Version 3: version 4 without the `mode` of accesses and code sites. Kept only to read old
// runs; the tracer then recorded kernel-mode instructions alone, so every mode is `kernel`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3File {
    schema: String,
    #[allow(dead_code)]
    version: u32,
    target: Target,
    #[serde(default)]
    shard: Option<Shard>,
    tests: Vec<V3Test>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Test {
    id: String,
    calls: [String; 2],
    status: Status,
    shared: Vec<V3Location>,
    false_sharing: Vec<V3Location>,
    mismatches: Vec<Mismatch>,
    errors: Vec<TestError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Location {
    #[serde(with = "hex")]
    addr: u64,
    size: u32,
    what: What,
    a: V3Access,
    b: V3Access,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Access {
    rw: Rw,
    sites: Vec<V3Site>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Site {
    #[serde(with = "hex")]
    pc: u64,
    symbol: Option<String>,
    #[serde(with = "hex")]
    offset: u64,
    frames: Vec<Frame>,
}

impl V3File {
    fn upgrade(self) -> ConflictsFile {
        let access = |a: V3Access| Access {
            rw: a.rw,
            mode: Mode::Kernel,
            sites: a
                .sites
                .into_iter()
                .map(|s| CodeSite {
                    pc: s.pc,
                    mode: Mode::Kernel,
                    symbol: s.symbol,
                    offset: s.offset,
                    frames: s.frames,
                })
                .collect(),
            stack: Vec::new(),
        };
        let locations = |ls: Vec<V3Location>| {
            ls.into_iter()
                .map(|l| Location {
                    addr: l.addr,
                    size: l.size,
                    slots: FIRST_PAIR,
                    what: l.what,
                    a: access(l.a),
                    b: access(l.b),
                })
                .collect()
        };
        ConflictsFile {
            schema: self.schema,
            version: CONFLICTS_VERSION,
            target: self.target,
            shard: self.shard,
            tests: self
                .tests
                .into_iter()
                .map(|t| TestConflicts {
                    id: t.id,
                    calls: t.calls.to_vec(),
                    status: t.status,
                    shared: locations(t.shared),
                    false_sharing: locations(t.false_sharing),
                    mismatches: t.mismatches,
                    errors: t.errors,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(pc: u64, func: &str, line: u32) -> CodeSite {
        CodeSite {
            pc,
            mode: Mode::Kernel,
            symbol: Some(func.into()),
            offset: 4,
            frames: vec![
                Frame {
                    function: Some("lockref_get".into()),
                    file: Some("lib/lockref.c".into()),
                    line: Some(52),
                },
                Frame {
                    function: Some(func.into()),
                    file: Some("fs/dcache.c".into()),
                    line: Some(line),
                },
            ],
        }
    }

    fn location(addr: u64, what: What, a: Vec<CodeSite>, b: Vec<CodeSite>) -> Location {
        Location {
            addr,
            size: 4,
            slots: FIRST_PAIR,
            what,
            a: Access {
                rw: Rw::Rw,
                mode: Mode::Kernel,
                sites: a,
                stack: vec![],
            },
            b: Access {
                rw: Rw::R,
                mode: Mode::Kernel,
                sites: b,
                stack: vec![],
            },
        }
    }

    fn file() -> ConflictsFile {
        let dentry = What::Slab {
            cache: "dentry".into(),
            vaddr: 0xffff_8880_0000_1000,
        };
        let jiffies = What::Static {
            symbol: "jiffies".into(),
            offset: 0,
            section: ".data".into(),
            vaddr: 0xffff_ffff_8200_0000,
        };
        let (dget, dput) = (site(0x10, "dget", 7), site(0x20, "dput", 9));
        let test = |id: &str, shared, status| TestConflicts {
            id: id.into(),
            calls: vec!["stat".into(), "stat".into()],
            status,
            shared,
            false_sharing: vec![],
            mismatches: vec![],
            errors: vec![],
        };
        ConflictsFile {
            schema: CONFLICTS_SCHEMA.into(),
            version: CONFLICTS_VERSION,
            target: Target {
                name: "linux".into(),
                version: Some("6.12".into()),
                symbols: None,
            },
            shard: None,
            tests: vec![
                test("stat_stat_0_0", vec![], Status::ConflictFree),
                test(
                    "stat_stat_1_0",
                    vec![
                        location(
                            0x1000,
                            dentry.clone(),
                            vec![dget.clone()],
                            vec![dput.clone()],
                        ),
                        location(0x2000, jiffies, vec![dput.clone()], vec![dget.clone()]),
                    ],
                    Status::Conflicted,
                ),
                test(
                    "stat_stat_2_0",
                    vec![location(
                        0x1000,
                        dentry,
                        vec![dget.clone(), dput],
                        vec![dget],
                    )],
                    Status::Conflicted,
                ),
            ],
        }
    }

    #[test]
    fn version_5_stores_each_site_frame_and_object_once() {
        let f = file();
        let c = f.compact();
        assert_eq!(c.sites.len(), 2);
        assert_eq!(c.objects.len(), 2);
        // lockref_get's frame is shared by both sites.
        assert_eq!(c.frames.len(), 3);
        assert_eq!(c.sites[0].frames, vec![0, 1]);
        assert_eq!(c.sites[1].frames, vec![0, 2]);
        assert_eq!(c.tests[2].shared[0].a.sites, vec![0, 1]);
        let text = f.to_json();
        assert!(text.starts_with("{\"schema\":\"commuter.conflicts\",\"version\":5,\n"));
        assert_eq!(text.matches("\"fs/dcache.c\"").count(), 2, "{text}");
        let back = ConflictsFile::from_json(&text).expect("reads");
        assert_eq!(back, f);
        assert_eq!(back.to_json(), text, "same input, same bytes");
    }

    #[test]
    fn a_triple_is_version_6_with_the_slots_of_each_pair() {
        let mut f = file();
        let pairs = f.to_json();
        let t = &mut f.tests[1];
        t.calls.push("stat".into());
        // The second location was shared by calls b and c.
        t.shared[1].slots = [1, 2];
        assert_eq!(
            (t.shared[0].pair_name(), t.shared[1].pair_name()),
            ("ab".to_string(), "bc".to_string())
        );
        let text = f.to_json();
        assert!(text.starts_with("{\"schema\":\"commuter.conflicts\",\"version\":6,\n"));
        assert_eq!(text.matches("\"slots\":[1,2]").count(), 1, "{text}");
        assert!(!text.contains("\"slots\":[0,1]"), "a and b are left out");
        let back = ConflictsFile::from_json(&text).expect("v6 reads");
        assert_eq!(back, f);
        assert_eq!(back.to_json(), text, "same input, same bytes");
        // Pairs only: still version 5, with no trace of the new field.
        assert!(pairs.contains("\"version\":5,") && !pairs.contains("slots"));
        // A version 5 file cannot hold a triple: refused, not read as if it could.
        let as_v5 = text.replacen("\"version\":6", "\"version\":5", 1);
        let e = ConflictsFile::from_json(&as_v5)
            .expect_err("a triple in version 5")
            .to_string();
        assert!(
            e.contains("version 5 cannot hold test \"stat_stat_1_0\" of 3 calls")
                && e.contains("needs version 6"),
            "{e}"
        );
    }

    #[test]
    fn stacks_are_version_7_and_stored_as_site_indices() {
        let mut f = file();
        let caller = |pc, func: &str| CodeSite {
            pc,
            mode: Mode::Kernel,
            symbol: Some(func.into()),
            offset: 0x20,
            frames: vec![Frame {
                function: Some(func.into()),
                file: Some("mm/util.c".into()),
                line: Some(575),
            }],
        };
        let stack = vec![
            caller(0x100, "vm_mmap_pgoff"),
            caller(0x200, "ksys_mmap_pgoff"),
        ];
        f.tests[1].shared[0].a.stack = stack.clone();
        f.tests[2].shared[0].b.stack = stack;
        let c = f.compact();
        assert_eq!(c.version, 7);
        assert_eq!(
            c.tests[1].shared[0].a.stack,
            vec![1, 2],
            "after a's site, dget"
        );
        assert_eq!(c.tests[2].shared[0].b.stack, vec![1, 2], "stored once");
        assert!(c.tests[1].shared[0].b.stack.is_empty());
        let text = f.to_json();
        assert!(text.starts_with("{\"schema\":\"commuter.conflicts\",\"version\":7,\n"));
        assert_eq!(text.matches("\"stack\":").count(), 2, "{text}");
        let back = ConflictsFile::from_json(&text).expect("v7 reads");
        assert_eq!(back, f);
        assert_eq!(back.to_json(), text, "same input, same bytes");
        let bad = text.replacen("\"stack\":[1,2]", "\"stack\":[1,9]", 1);
        let e = ConflictsFile::from_json(&bad)
            .expect_err("index")
            .to_string();
        assert!(e.contains("shared[0].a.stack[1]"), "{e}");
        for older in ["5", "6"] {
            let as_older = text.replacen("\"version\":7", &format!("\"version\":{older}"), 1);
            let e = ConflictsFile::from_json(&as_older)
                .expect_err("stacks before version 7")
                .to_string();
            assert!(e.contains("cannot hold call stacks"), "{e}");
        }
    }

    #[test]
    fn version_4_and_3_read_into_the_same_structure() {
        let f = file();
        let mut v4 = serde_json::to_value(&f).expect("v4");
        v4["version"] = 4.into();
        let read = ConflictsFile::from_json(&v4.to_string()).expect("v4 reads");
        assert_eq!(read, f);
        // Version 3: no mode anywhere.
        let mut v3 = v4.clone();
        v3["version"] = 3.into();
        for t in v3["tests"].as_array_mut().expect("tests") {
            for l in t["shared"].as_array_mut().expect("shared") {
                for side in ["a", "b"] {
                    let a = l[side].as_object_mut().expect("access");
                    a.remove("mode");
                    for s in a["sites"].as_array_mut().expect("sites") {
                        s.as_object_mut().expect("site").remove("mode");
                    }
                }
            }
        }
        assert!(!v3.to_string().contains("\"mode\""));
        assert_eq!(ConflictsFile::from_json(&v3.to_string()).expect("v3"), f);
        // A version 4 file without the modes is refused, not defaulted.
        v3["version"] = 4.into();
        assert!(ConflictsFile::from_json(&v3.to_string()).is_err());
    }

    #[test]
    fn other_versions_and_bad_indices_are_refused_with_the_fix() {
        let text = file().to_json();
        let old = text.replacen("\"version\":5", "\"version\":2", 1);
        let e = ConflictsFile::from_json(&old).expect_err("v2").to_string();
        assert!(e.contains("version 2") && e.contains("commuter run"), "{e}");
        let new = text.replacen("\"version\":5", "\"version\":8", 1);
        let e = ConflictsFile::from_json(&new).expect_err("v8").to_string();
        assert!(e.contains("newer commuter"), "{e}");
        // Version 8's fields must not matter: the version is checked first.
        let e = ConflictsFile::from_json(r#"{"schema":"commuter.conflicts","version":8,"x":1}"#)
            .expect_err("v8")
            .to_string();
        assert!(e.contains("newer commuter"), "{e}");
        let bad = text.replacen("\"sites\":[0]", "\"sites\":[7]", 1);
        assert_ne!(bad, text);
        let e = ConflictsFile::from_json(&bad)
            .expect_err("index")
            .to_string();
        assert!(
            e.contains("test \"stat_stat_1_0\", shared[0].a.sites[0]")
                && e.contains("entry 7 of the `sites` table, which has 2 entries"),
            "{e}"
        );
        let bad = text.replacen("\"frames\":[0,2]", "\"frames\":[0,3]", 1);
        let e = ConflictsFile::from_json(&bad)
            .expect_err("frame")
            .to_string();
        assert!(
            e.contains("sites[1].frames[1]") && e.contains("`frames`"),
            "{e}"
        );
        let bad = text.replacen("\"what\":1", "\"what\":9", 1);
        let e = ConflictsFile::from_json(&bad)
            .expect_err("object")
            .to_string();
        assert!(
            e.contains("shared[1].what") && e.contains("`objects`"),
            "{e}"
        );
    }
}
