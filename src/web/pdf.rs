//! A table written as a PDF a page at a time, in any script: each page's
//! content and page object leave as soon as the page is full, and the fonts
//! (subsets of what the document used, see [`fonts`]) are written at the end,
//! so memory stays flat however many rows there are.
//!
//! Objects: 1 the catalog, 2 the page tree (written last), five per font
//! from 3 on, then each page's content stream and page object.

mod fonts;

use std::path::Path;

pub use fonts::DEFAULT_FALLBACKS;
use fonts::{FontSet, Used, chunk};
use pdf_writer::{Chunk, Content, Finish, Name, Rect, Ref, Str};

/// A4 landscape, in points.
const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const LINE: f32 = 12.0;
const TOP: f32 = 560.0;
const BOTTOM: f32 = 36.0;
const MARGIN: f32 = 30.0;
/// Characters of a cell looked at (a cell shows far fewer).
const MAX_CHARS: usize = 400;

/// Regular or bold text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Regular,
    Bold,
}

/// A table written as a PDF a page at a time.
pub struct PdfTable {
    fonts: &'static FontSet,
    used: Vec<Used>,
    title: String,
    /// Column headings and their left edges (points).
    columns: Vec<(String, f32)>,
    /// Byte offset of each object, by number (index 0 unused).
    offsets: Vec<u64>,
    written: u64,
    pages: Vec<i32>,
    content: Content,
    y: f32,
}

impl PdfTable {
    /// A table under `title` with `columns` (heading, left edge in points
    /// from 30 to 812), its characters drawn from DejaVu Sans and then
    /// `fallback_fonts` (empty: the system's usual CJK font, if any).
    pub fn new(title: &str, columns: &[(&str, f32)], fallback_fonts: &[impl AsRef<Path>]) -> Self {
        let paths: Vec<_> = fallback_fonts
            .iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        let fonts = FontSet::get(&paths);
        let first_page = 3 + 5 * fonts.fonts.len();
        PdfTable {
            fonts,
            used: fonts.fonts.iter().map(|_| Used::default()).collect(),
            title: title.to_string(),
            columns: columns.iter().map(|(h, x)| (h.to_string(), *x)).collect(),
            offsets: vec![0; first_page],
            written: 0,
            pages: Vec::new(),
            content: Content::new(),
            y: TOP,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
    }

    /// Writes `chunk`, which holds exactly one object, numbered `number`.
    fn put(&mut self, out: &mut Vec<u8>, number: i32, chunk: &Chunk) {
        let at = number as usize;
        if self.offsets.len() <= at {
            self.offsets.resize(at + 1, 0);
        }
        self.offsets[at] = self.written;
        self.emit(out, chunk.as_bytes());
    }

    /// The header and the catalog; the first page is begun.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        // 1.7: CFF fallback fonts are embedded as OpenType (1.6 and later).
        self.emit(&mut out, b"%PDF-1.7\n%\x80\x80\x80\x80\n");
        let mut c = chunk();
        c.indirect(Ref::new(1))
            .dict()
            .pair(Name(b"Type"), Name(b"Catalog"))
            .pair(Name(b"Pages"), Ref::new(2));
        self.put(&mut out, 1, &c);
        self.begin_page();
        out
    }

    /// Writes `text` at `x` on the current line, cut with "…" to `width`.
    fn text(&mut self, style: Style, size: f32, x: f32, width: f32, text: &str) {
        let runs = self.shape(style, size, width, text);
        if runs.is_empty() {
            return;
        }
        self.content.begin_text();
        self.content.next_line(x, self.y);
        for (font, bytes) in runs {
            let name = format!("F{font}");
            self.content.set_font(Name(name.as_bytes()), size);
            self.content.show(Str(&bytes));
        }
        self.content.end_text();
    }

    /// The glyphs of `text` as runs of one font each (font index, glyph
    /// ids as big-endian pairs), at most `width` points wide at `size`.
    fn shape(&mut self, style: Style, size: f32, width: f32, text: &str) -> Vec<(usize, Vec<u8>)> {
        let primary = if style == Style::Bold { 1 } else { 0 };
        let fonts = &self.fonts.fonts;
        let chain = std::iter::once(primary).chain(2..fonts.len());
        let pick = |c: char| -> (usize, u16, char) {
            for f in chain.clone() {
                if let Some(g) = fonts[f].glyph(c) {
                    return (f, g, c);
                }
            }
            (primary, fonts[primary].glyph('?').unwrap_or(0), '?')
        };
        let glyphs: Vec<(usize, u16, char)> = text
            .chars()
            .take(MAX_CHARS)
            .filter(|c| !matches!(c, '\u{200b}'..='\u{200f}' | '\u{feff}'))
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .map(pick)
            .collect();
        let wide = |g: &(usize, u16, char)| fonts[g.0].advance(g.1) * size / 1000.0;
        let total: f32 = glyphs.iter().map(wide).sum();
        let mut shown = glyphs;
        if total > width {
            let dots = pick('…');
            let mut room = width - wide(&dots);
            let keep = shown
                .iter()
                .take_while(|g| {
                    room -= wide(g);
                    room >= 0.0
                })
                .count();
            shown.truncate(keep);
            while shown.last().is_some_and(|g| g.2 == ' ') {
                shown.pop();
            }
            shown.push(dots);
        }
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        for (f, glyph, c) in shown {
            let id = self.used[f].keep(&fonts[f], glyph, c);
            match runs.last_mut() {
                Some((font, bytes)) if *font == f => bytes.extend_from_slice(&id.to_be_bytes()),
                _ => runs.push((f, id.to_be_bytes().to_vec())),
            }
        }
        runs
    }

    fn begin_page(&mut self) {
        self.content = Content::new();
        self.y = TOP;
        if self.pages.is_empty() {
            let title = std::mem::take(&mut self.title);
            self.text(Style::Bold, 11.0, MARGIN, PAGE_W - 2.0 * MARGIN, &title);
            self.y -= LINE * 1.8;
        }
        let columns = std::mem::take(&mut self.columns);
        for (i, (heading, x)) in columns.iter().enumerate() {
            let width = self.cell_width(&columns, i);
            self.text(Style::Bold, 8.0, *x, width, heading);
        }
        self.columns = columns;
        self.y -= LINE;
    }

    /// The room of column `i`: to the next column, less a gap.
    fn cell_width(&self, columns: &[(String, f32)], i: usize) -> f32 {
        let end = columns.get(i + 1).map_or(PAGE_W - MARGIN, |c| c.1 - 6.0);
        (end - columns[i].1).max(0.0)
    }

    fn end_page(&mut self, out: &mut Vec<u8>) {
        let page_no = self.pages.len() + 1;
        self.y = BOTTOM - 14.0;
        self.text(
            Style::Regular,
            7.0,
            PAGE_W - 80.0,
            60.0,
            &format!("Page {page_no}"),
        );
        let number = self.offsets.len() as i32;
        let stream = std::mem::replace(&mut self.content, Content::new()).finish();
        let stream = deflate(&stream);
        let mut c = chunk();
        c.stream(Ref::new(number), &stream)
            .filter(pdf_writer::Filter::FlateDecode);
        self.put(out, number, &c);
        let mut c = chunk();
        let mut page = c.page(Ref::new(number + 1));
        page.parent(Ref::new(2))
            .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .contents(Ref::new(number));
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        for i in 0..self.used.len() {
            fonts.pair(Name(format!("F{i}").as_bytes()), Ref::new(3 + 5 * i as i32));
        }
        fonts.finish();
        resources.finish();
        page.finish();
        self.put(out, number + 1, &c);
        self.pages.push(number + 1);
    }

    /// One row of the table, a cell per column (a new page when this one
    /// is full).
    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[String]) {
        if self.y < BOTTOM {
            self.end_page(out);
            self.begin_page();
        }
        let columns = std::mem::take(&mut self.columns);
        for (i, cell) in cells.iter().enumerate().take(columns.len()) {
            let width = self.cell_width(&columns, i);
            self.text(Style::Regular, 8.0, columns[i].1, width, cell);
        }
        self.columns = columns;
        self.y -= LINE;
    }

    /// The last page, the fonts, the page tree, the cross-reference table
    /// and the trailer.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        self.end_page(out);
        let used = std::mem::take(&mut self.used);
        for (i, u) in used.iter().enumerate() {
            let mut chunks = Vec::new();
            u.write(&self.fonts.fonts[i], i, 3 + 5 * i as i32, &mut |c| {
                chunks.push(c)
            });
            for (k, c) in chunks.iter().enumerate() {
                self.put(out, 3 + 5 * i as i32 + k as i32, c);
            }
        }
        let mut c = chunk();
        c.pages(Ref::new(2))
            .kids(self.pages.iter().map(|p| Ref::new(*p)))
            .count(self.pages.len() as i32);
        self.put(out, 2, &c);
        let xref_at = self.written;
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len());
        for offset in &self.offsets[1..] {
            xref.push_str(&format!("{offset:010} 00000 n \n"));
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            self.offsets.len()
        ));
        self.emit(out, xref.as_bytes());
    }

    /// Pages written so far.
    pub fn pages(&self) -> usize {
        self.pages.len()
    }
}

/// `bytes` deflated (zlib, fast: a page's text shrinks about fivefold).
fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(bytes);
    z.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [(&str, f32); 3] = [("Reference", 30.0), ("Subject", 100.0), ("Status", 400.0)];

    fn table() -> PdfTable {
        PdfTable::new("Tickets: status = open", &COLUMNS, &[] as &[&str])
    }

    /// Every xref entry points at its object, over several pages.
    #[test]
    fn the_pdf_is_well_formed_over_many_pages() {
        let mut p = table();
        let mut out = p.start();
        for i in 0..130 {
            p.row(
                &mut out,
                &[
                    format!("TKT-{i}"),
                    "Printer (on fire)".into(),
                    "Open".into(),
                ],
            );
        }
        p.close(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.starts_with("%PDF-1.7"));
        assert!(text.ends_with("%%EOF\n"));
        assert!(p.pages() >= 3, "{} pages", p.pages());
        assert!(text.contains(&format!("/Count {}", p.pages())));
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(out[start..].starts_with(b"xref"));
        for (n, offset) in p.offsets.iter().enumerate().skip(1) {
            let at = *offset as usize;
            assert!(
                out[at..].starts_with(format!("{n} 0 obj").as_bytes()),
                "object {n}"
            );
        }
        assert!(text.contains("/FontFile2"), "the font is embedded");
        assert!(text.contains("/FlateDecode"), "compressed");
        assert!(text.contains("+DejaVuSans"), "as a subset");
    }

    /// Letters of every script come from a font that has them; a cell too
    /// long for its column ends in "…"; nothing is `?` that a font has.
    #[test]
    fn text_is_shaped_from_the_fonts_that_have_it() {
        let mut p = table();
        let runs = p.shape(Style::Regular, 8.0, 500.0, "Ärger – „Zahlung“ Ωμέγα Привет");
        assert_eq!(runs.len(), 1, "DejaVu has all of it");
        assert_eq!(
            runs[0].1.len(),
            2 * "Ärger – „Zahlung“ Ωμέγα Привет".chars().count()
        );
        let chars: String = p.used[0].chars_shown().into_iter().collect();
        assert!(!chars.contains('?'), "{chars}");
        let cut = p.shape(
            Style::Regular,
            8.0,
            40.0,
            "A subject far too long for its column",
        );
        let glyphs = cut[0].1.len() / 2;
        assert!(glyphs < 15, "{glyphs} glyphs in 40 pt");
        assert!(p.used[0].chars_shown().contains(&'…'));
        // A character no font has is shown as '?', in the primary font.
        let none = p.shape(Style::Bold, 8.0, 100.0, "\u{10FFFD}");
        assert_eq!(none[0].0, 1);
        assert!(p.used[1].chars_shown().contains(&'?'));
    }
}
