//! C spelling: string literals, comments and identifiers from any text, integer literals.

use std::collections::BTreeSet;

/// A C string literal of `s`: printable ASCII as is, everything else (and `?`, which could
/// start a trigraph under `-std=c99`) as an escape.
pub fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(char::from(b)),
            // Always three digits, so a following digit is not read as part of it.
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// Text safe inside a `/* */` comment: printable ASCII only, no comment delimiters, no
/// trigraph, no line splice.
pub fn comment(s: &str) -> String {
    let plain: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    plain
        .replace("*/", "* /")
        .replace("/*", "/ *")
        .replace("??", "? ?")
        .replace('\\', "\\ ")
}

/// An identifier fragment: letters, digits and `_`, every other byte as `_`.
pub fn ident(s: &str) -> String {
    let id: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if id.is_empty() { "_".into() } else { id }
}

/// `base`, or `base_2`, `base_3`... if taken; recorded as taken.
pub fn unique(taken: &mut BTreeSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A `long long` literal (the most negative value has no literal of its own).
pub fn long_long(v: i64) -> String {
    if v == i64::MIN {
        "(-9223372036854775807LL - 1)".into()
    } else {
        format!("{v}LL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_c_would_read_otherwise() {
        assert_eq!(string("__f0"), "\"__f0\"");
        assert_eq!(string("a\"b\\c??=d"), "\"a\\\"b\\\\c\\?\\?=d\"");
        assert_eq!(string("é1"), "\"\\303\\2511\"");
        assert_eq!(string("\n"), "\"\\012\"");
    }

    #[test]
    fn comments_cannot_end_early_or_splice() {
        assert_eq!(comment("a */ b /* c ??/ d\\"), "a * / b / * c ? ?/ d\\ ");
        assert_eq!(comment("x\ny"), "x?y");
    }

    #[test]
    fn identifiers_are_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(unique(&mut taken, &ident("open/open")), "open_open");
        assert_eq!(unique(&mut taken, &ident("open_open")), "open_open_2");
        assert_eq!(ident(""), "_");
        assert_eq!(long_long(-3), "-3LL");
        assert_eq!(long_long(i64::MIN), "(-9223372036854775807LL - 1)");
    }
}
