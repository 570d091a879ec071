//! The paper-style heat map: a lower-triangular grid of call pairs, each cell coloured by its
//! conflict-free fraction (red none, yellow half, green all) and labelled with the number of
//! conflicted tests; as SVG, PNG (the SVG rasterised) or TikZ, one panel per run. Call sets of
//! three calls have no cell in a grid of pairs: the SVG lists them under it, one row per set
//! (a cell coloured the same way, the set's name and which two of its calls shared memory in
//! how many tests); the TikZ figure draws pairs only.

use crate::PairTests;
use crate::summary::{PairSummary, summarize};
use commuter_scan::ConflictsFile;
use std::collections::HashMap;
use std::fmt::Write as _;

const CELL: usize = 30;
const LABEL: usize = 90;
const TITLE: usize = 40;
const LEGEND: usize = 50;

/// The SVG document. Calls are ordered by first appearance in `pairs`; the panel title reads
/// `Linux 6.12.95+deb12-amd64 (X of Y cases scale)`.
pub fn heatmap_svg(conflicts: &ConflictsFile, pairs: &[PairTests]) -> String {
    heatmap_svg_panels(&[(conflicts, pairs)])
}

/// Several runs side by side (e.g. Linux and another target, or two kernels), one panel each,
/// as in the paper's figure; one run gives exactly [`heatmap_svg`]'s document.
pub fn heatmap_svg_panels(runs: &[(&ConflictsFile, &[PairTests])]) -> String {
    let panels: Vec<Panel> = runs
        .iter()
        .map(|(conflicts, pairs)| {
            let rows = summarize(conflicts, pairs);
            let calls = call_order(pairs);
            let heading = title(conflicts, &rows);
            let sets = set_rows(conflicts, &rows);
            let set_w = sets
                .iter()
                .map(|r| SET_X + CELL + 8 + r.text.chars().count() * 7 + 20)
                .max()
                .unwrap_or(0);
            // About 9 px per character at 16 px: the title must not be clipped on small grids.
            let w = (LABEL + calls.len() * CELL + 20)
                .max(heading.chars().count() * 9 + 20)
                .max(set_w);
            (heading, rows, calls, w, sets)
        })
        .collect();
    let w: usize = panels.iter().map(|p| p.3).sum();
    let n = panels.iter().map(|p| p.2.len()).max().unwrap_or(0);
    let grid = n * CELL;
    // The call labels under the grid, when there is one.
    let labels_h = if n > 0 { LABEL } else { 0 };
    let sets = panels.iter().map(|p| p.4.len()).max().unwrap_or(0);
    let sets_h = sets * CELL;
    let h = TITLE + grid + labels_h + sets_h + LEGEND;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let mut x = 0;
    for (heading, rows, calls, pw, set_list) in &panels {
        if panels.len() > 1 {
            let _ = writeln!(s, r#"<g transform="translate({x} 0)">"#);
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="26" font-size="16" text-anchor="middle">{}</text>"#,
            pw / 2,
            escape(heading)
        );
        cells(&mut s, rows, calls);
        labels(&mut s, calls);
        sets_list(&mut s, set_list, TITLE + grid + labels_h);
        if panels.len() > 1 {
            s.push_str("</g>\n");
        }
        x += pw;
    }
    legend(&mut s, TITLE + grid + labels_h + sets_h + 10);
    s.push_str("</svg>\n");
    s
}

/// Why a PNG heat map could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// No font was given, or none of the given data is a font.
    #[error(
        "no usable font for the heat map's text: install a sans-serif TrueType font (Debian: `apt-get install fonts-dejavu-core`)"
    )]
    NoFont,
    /// The SVG did not parse (a bug: the SVG is this crate's own).
    #[error("the heat map's SVG did not parse: {0}")]
    Svg(String),
    /// The picture has no pixels or too many.
    #[error("the heat map is too large to draw ({width} x {height} pixels at scale {scale})")]
    Size {
        /// Width in pixels.
        width: f32,
        /// Height in pixels.
        height: f32,
        /// The scale asked for.
        scale: f32,
    },
    /// The encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// [`heatmap_svg_panels`]'s figure as a PNG, `scale` pixels per SVG unit (2 for print), its
/// text set in the first font of `fonts` (TrueType or OpenType data, e.g. DejaVu Sans, as the
/// SVG asks). The same runs and font give the same bytes.
pub fn heatmap_png(
    runs: &[(&ConflictsFile, &[PairTests])],
    fonts: &[Vec<u8>],
    scale: f32,
) -> Result<Vec<u8>, PngError> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    {
        let db = opt.fontdb_mut();
        for font in fonts {
            db.load_font_data(font.clone());
        }
        // Whatever the given font's family, the SVG's `sans-serif` fallback names it, so the
        // text is drawn with it and nothing else (no system font lookup: same bytes anywhere).
        let family = db
            .faces()
            .next()
            .and_then(|f| f.families.first())
            .map(|(name, _)| name.clone())
            .ok_or(PngError::NoFont)?;
        db.set_sans_serif_family(family.clone());
        opt.font_family = family;
    }
    let svg = heatmap_svg_panels(runs);
    let tree = usvg::Tree::from_str(&svg, &opt).map_err(|e| PngError::Svg(e.to_string()))?;
    let size = tree.size();
    let (width, height) = (size.width() * scale, size.height() * scale);
    let too_big = || PngError::Size {
        width,
        height,
        scale,
    };
    // 2^14 pixels a side is beyond any figure of a few dozen calls, and keeps the buffer small.
    if !(width >= 1.0 && height >= 1.0 && width <= 16384.0 && height <= 16384.0) {
        return Err(too_big());
    }
    let mut pixmap =
        tiny_skia::Pixmap::new(width.ceil() as u32, height.ceil() as u32).ok_or_else(too_big)?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| PngError::Encode(e.to_string()))
}

/// The same figure as TikZ/PGF for LaTeX documents (`\usepackage{tikz}`; one cell is 0.5 cm),
/// one panel per run, side by side.
pub fn heatmap_tikz(runs: &[(&ConflictsFile, &[PairTests])]) -> String {
    let mut s = String::from(
        "% commuter heat map: \\usepackage{tikz} in the preamble, then \\input this file.\n\\begin{tikzpicture}[x=0.5cm,y=-0.5cm,font=\\scriptsize]\n",
    );
    let mut x0 = 0usize;
    for (conflicts, pairs) in runs {
        let rows = summarize(conflicts, pairs);
        let calls = call_order(pairs);
        let n = calls.len();
        let index: HashMap<&str, usize> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let _ = writeln!(
            s,
            "\\node[anchor=south,font=\\small] at ({:.1},-0.3) {{{}}};",
            x0 as f64 + n as f64 / 2.0,
            tex(&title(conflicts, &rows))
        );
        for r in rows.iter().filter(|r| r.calls.len() == 2) {
            let (Some(&a), Some(&b)) = (
                index.get(r.calls[0].as_str()),
                index.get(r.calls[1].as_str()),
            ) else {
                continue;
            };
            let (col, row) = (x0 + a.min(b), a.max(b));
            let rgb = r.fraction().map_or([221, 221, 221], rgb);
            let _ = writeln!(
                s,
                "\\fill[fill={{rgb,255:red,{};green,{};blue,{}}},draw=white] ({col},{row}) rectangle ++(1,1);",
                rgb[0], rgb[1], rgb[2]
            );
            if r.conflicted > 0 {
                let _ = writeln!(
                    s,
                    "\\node[font=\\tiny] at ({col}.5,{row}.5) {{{}}};",
                    r.conflicted
                );
            }
        }
        for (i, c) in calls.iter().enumerate() {
            let c = tex(c);
            let _ = writeln!(s, "\\node[anchor=east] at ({x0},{i}.5) {{{c}}};");
            let _ = writeln!(
                s,
                "\\node[anchor=east,rotate=60] at ({}.5,{n}.1) {{{c}}};",
                x0 + i
            );
        }
        x0 += n + 4;
    }
    s.push_str("\\end{tikzpicture}\n");
    s
}

/// TeX's special characters escaped for text mode.
fn tex(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

/// One run's panel: its title, rows, the calls of its grid, its width, its call sets of three.
type Panel = (String, Vec<PairSummary>, Vec<String>, usize, Vec<SetRow>);

/// Left edge of the list of call sets of three.
const SET_X: usize = 10;

/// One call set of three in the list under the grid.
struct SetRow {
    fill: String,
    conflicted: usize,
    /// `stat/stat/stat: 20 of 22 conflict-free; shared: ab 2, ac 0, bc 1`.
    text: String,
}

fn set_rows(conflicts: &ConflictsFile, rows: &[PairSummary]) -> Vec<SetRow> {
    let counts = crate::summary::CpuPairs::of(conflicts);
    rows.iter()
        .filter(|r| r.calls.len() > 2)
        .map(|r| SetRow {
            fill: r.fraction().map_or_else(|| "#dddddd".to_string(), colour),
            conflicted: r.conflicted,
            text: format!(
                "{}: {} of {} conflict-free; shared: {}",
                r.calls.join("/"),
                r.conflict_free,
                r.tests,
                counts.text(&r.calls)
            ),
        })
        .collect()
}

fn sets_list(s: &mut String, rows: &[SetRow], top: usize) {
    for (i, r) in rows.iter().enumerate() {
        let y = top + i * CELL;
        let _ = writeln!(
            s,
            r##"<rect x="{SET_X}" y="{y}" width="{CELL}" height="{CELL}" fill="{}" stroke="#ffffff"/>"##,
            r.fill
        );
        conflicted_count(s, SET_X, y, r.conflicted);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11">{}</text>"#,
            SET_X + CELL + 8,
            y + CELL / 2 + 4,
            escape(&r.text)
        );
    }
}

/// The calls of the grid: those of the pairs, in order of first appearance.
fn call_order(pairs: &[PairTests]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let pair_calls = pairs.iter().filter(|p| p.calls.len() == 2);
    for c in pair_calls.flat_map(|p| p.calls.iter()) {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// `Linux 6.12.95+deb12-amd64 (X of Y cases scale)`.
fn title(conflicts: &ConflictsFile, rows: &[PairSummary]) -> String {
    let tests: usize = rows.iter().map(|r| r.tests).sum();
    let free: usize = rows.iter().map(|r| r.conflict_free).sum();
    let t = &conflicts.target;
    let mut name = capitalised(&t.name);
    if let Some(v) = &t.version {
        name.push(' ');
        name.push_str(v);
    }
    format!("{name} ({free} of {tests} cases scale)")
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Row `i` (call i), column `j <= i` (call j): the pair {call j, call i}.
fn cells(s: &mut String, rows: &[PairSummary], calls: &[String]) {
    let index: HashMap<&str, usize> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    for r in rows.iter().filter(|r| r.calls.len() == 2) {
        let (Some(&x), Some(&y)) = (
            index.get(r.calls[0].as_str()),
            index.get(r.calls[1].as_str()),
        ) else {
            continue;
        };
        let (col, row) = (x.min(y), x.max(y));
        let (px, py) = (LABEL + col * CELL, TITLE + row * CELL);
        let fill = r.fraction().map_or_else(|| "#dddddd".to_string(), colour);
        let tip = format!(
            "{}: {} of {} conflict-free",
            r.calls.join("/"),
            r.conflict_free,
            r.tests
        );
        let _ = writeln!(
            s,
            r##"<rect x="{px}" y="{py}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#ffffff"><title>{}</title></rect>"##,
            escape(&tip)
        );
        conflicted_count(s, px, py, r.conflicted);
    }
}

/// A cell's count of conflicted tests, centred in the cell at (`x`, `y`); none when 0.
fn conflicted_count(s: &mut String, x: usize, y: usize, conflicted: usize) {
    if conflicted > 0 {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{conflicted}</text>"#,
            x + CELL / 2,
            y + CELL / 2 + 4,
        );
    }
}

fn labels(s: &mut String, calls: &[String]) {
    let bottom = TITLE + calls.len() * CELL;
    for (i, c) in calls.iter().enumerate() {
        let c = escape(c);
        let mid = i * CELL + CELL / 2;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{c}</text>"#,
            LABEL - 6,
            TITLE + mid + 4
        );
        let (x, y) = (LABEL + mid + 4, bottom + 6);
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{y}" font-size="11" text-anchor="end" transform="rotate(-60 {x} {y})">{c}</text>"#
        );
    }
}

fn legend(s: &mut String, y: usize) {
    let _ = writeln!(
        s,
        r#"<text x="{LABEL}" y="{}" font-size="11">conflict-free:</text>"#,
        y + 12
    );
    for (i, f) in [0.0, 0.25, 0.5, 0.75, 1.0].iter().enumerate() {
        let x = LABEL + 80 + i * 44;
        let _ = writeln!(
            s,
            r##"<rect x="{x}" y="{y}" width="16" height="16" fill="{}" stroke="#999999"/><text x="{}" y="{}" font-size="10">{:.0}%</text>"##,
            colour(*f),
            x + 19,
            y + 12,
            f * 100.0
        );
    }
}

/// Red (0) through yellow (0.5) to green (1), ColorBrewer's RdYlGn end points.
fn colour(f: f64) -> String {
    let c = rgb(f);
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn rgb(f: f64) -> [u8; 3] {
    const RED: [f64; 3] = [215.0, 48.0, 39.0];
    const YELLOW: [f64; 3] = [254.0, 224.0, 139.0];
    const GREEN: [f64; 3] = [26.0, 152.0, 80.0];
    let f = f.clamp(0.0, 1.0);
    let (from, to, t) = if f < 0.5 {
        (RED, YELLOW, f * 2.0)
    } else {
        (YELLOW, GREEN, (f - 0.5) * 2.0)
    };
    let mut c = [0u8; 3];
    for (i, v) in c.iter_mut().enumerate() {
        *v = (from[i] + (to[i] - from[i]) * t).round() as u8;
    }
    c
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_red_yellow_green() {
        assert_eq!(colour(0.0), "#d73027");
        assert_eq!(colour(0.5), "#fee08b");
        assert_eq!(colour(1.0), "#1a9850");
        assert_eq!(colour(7.0), "#1a9850");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a<b&\"c\">"), "a&lt;b&amp;&quot;c&quot;&gt;");
        assert_eq!(capitalised("linux"), "Linux");
        assert_eq!(
            tex("6.12+deb_1 50% & {x}"),
            "6.12+deb\\_1 50\\% \\& \\{x\\}"
        );
    }
}
