//! The fonts of the PDF export: DejaVu Sans and Sans Bold carried in the
//! binary (Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew, Arabic forms,
//! punctuation and symbols), then the fallback fonts the operator's system
//! has (`[export] fallback_fonts`, Droid Sans Fallback by default: Chinese,
//! Japanese, Korean), loaded once per process on the first export.
//!
//! What a document uses of each font is kept in [`Used`] (a glyph remapper,
//! widths and the characters behind each glyph, bounded by the font's glyph
//! count), so that only those glyphs are embedded at the end.

use std::path::PathBuf;
use std::sync::OnceLock;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Finish, Name, Rect, Ref, Str};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId};

/// One font face, its bytes held for the life of the process.
pub(super) struct Font {
    data: &'static [u8],
    index: u32,
    face: Face<'static>,
    /// The PostScript name (letters, digits and hyphens only).
    name: String,
    /// CFF outlines (embedded as OpenType) rather than TrueType.
    cff: bool,
}

impl Font {
    fn parse(data: &'static [u8], index: u32) -> Option<Font> {
        let face = Face::parse(data, index).ok()?;
        let name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .map(|n| {
                n.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect()
            })
            .filter(|n: &String| !n.is_empty())
            .unwrap_or_else(|| "Font".to_string());
        let cff = face.tables().cff.is_some();
        Some(Font {
            data,
            index,
            face,
            name,
            cff,
        })
    }

    /// The glyph of `c`, if this font has one.
    pub(super) fn glyph(&self, c: char) -> Option<u16> {
        self.face.glyph_index(c).map(|g| g.0).filter(|g| *g != 0)
    }

    /// The advance of `glyph` in thousandths of the font size.
    pub(super) fn advance(&self, glyph: u16) -> f32 {
        let units = f32::from(self.face.units_per_em().max(1));
        f32::from(self.face.glyph_hor_advance(GlyphId(glyph)).unwrap_or(0)) * 1000.0 / units
    }

    fn scaled(&self, v: i16) -> f32 {
        f32::from(v) * 1000.0 / f32::from(self.face.units_per_em().max(1))
    }
}

/// Every font of the export: `[regular, bold, fallbacks…]`.
pub(super) struct FontSet {
    pub(super) fonts: Vec<Font>,
}

/// Where Debian and other systems keep fonts with CJK glyphs; the first
/// that exists is used when `[export] fallback_fonts` is not set.
pub const DEFAULT_FALLBACKS: [&str; 3] = [
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
];

impl FontSet {
    /// The process's fonts: with the fallback fonts once one of them has
    /// loaded (then kept for the life of the process); until then DejaVu
    /// alone, and the fallbacks are looked for again on the next export (a
    /// font package installed while the daemon runs is picked up).
    pub(super) fn get(fallbacks: &[PathBuf]) -> &'static FontSet {
        static FULL: OnceLock<FontSet> = OnceLock::new();
        static BASIC: OnceLock<FontSet> = OnceLock::new();
        if let Some(full) = FULL.get() {
            return full;
        }
        let set = FontSet::load(fallbacks);
        if set.fonts.len() > 2 {
            FULL.get_or_init(|| set)
        } else {
            BASIC.get_or_init(|| set)
        }
    }

    fn load(fallbacks: &[PathBuf]) -> FontSet {
        let mut fonts = Vec::new();
        for data in [dejavu::sans::regular(), dejavu::sans::bold()] {
            if let Some(font) = Font::parse(data, 0) {
                fonts.push(font);
            }
        }
        assert_eq!(fonts.len(), 2, "the embedded DejaVu fonts parse");
        let defaults: Vec<PathBuf>;
        let paths = if fallbacks.is_empty() {
            defaults = DEFAULT_FALLBACKS
                .iter()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .take(1)
                .collect();
            &defaults[..]
        } else {
            fallbacks
        };
        for path in paths {
            match std::fs::read(path) {
                Ok(bytes) => {
                    // Loaded once per process and kept for its life.
                    let data: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    match Font::parse(data, 0) {
                        Some(font) => fonts.push(font),
                        None => tracing::warn!(
                            path = %path.display(),
                            "a PDF fallback font is not a font this export can read (TrueType or OpenType); it is not used"
                        ),
                    }
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "a PDF fallback font could not be read; characters only it has are shown as '?'"
                ),
            }
        }
        FontSet { fonts }
    }
}

/// What one document uses of one font.
#[derive(Default)]
pub(super) struct Used {
    remapper: GlyphRemapper,
    /// Width (thousandths) of each new glyph id.
    widths: Vec<f32>,
    /// The character each new glyph id shows, for text extraction.
    chars: Vec<(u16, char)>,
}

impl Used {
    /// The id in the subset of `glyph` (showing `c`), kept from now on.
    pub(super) fn keep(&mut self, font: &Font, glyph: u16, c: char) -> u16 {
        if let Some(id) = self.remapper.get(glyph) {
            return id;
        }
        let id = self.remapper.remap(glyph);
        let at = usize::from(id);
        if self.widths.len() <= at {
            self.widths.resize(at + 1, 0.0);
        }
        self.widths[at] = font.advance(glyph);
        self.chars.push((id, c));
        id
    }

    /// The characters shown so far.
    #[cfg(test)]
    pub(super) fn chars_shown(&self) -> Vec<char> {
        self.chars.iter().map(|(_, c)| *c).collect()
    }

    /// Writes the font's objects: `base` is its Type0 font, `base+1..=base+4`
    /// its CID font, descriptor, file and ToUnicode map.
    ///
    /// Long because it writes the five PDF objects of one font, each a few fields the
    /// format requires.
    pub(super) fn write(&self, font: &Font, number: usize, base: i32, put: &mut dyn FnMut(Chunk)) {
        let (type0, cid, descriptor, file, cmap) = (
            Ref::new(base),
            Ref::new(base + 1),
            Ref::new(base + 2),
            Ref::new(base + 3),
            Ref::new(base + 4),
        );
        // A subset's name starts with six capital letters of its own.
        let mut tag = (number as u32 + 1) * 7919 + u32::from(self.remapper.num_gids()) * 31;
        let mut name = String::new();
        for _ in 0..6 {
            name.push(char::from(b'A' + (tag % 26) as u8));
            tag /= 26;
        }
        name.push('+');
        name.push_str(&font.name);
        let name = Name(name.as_bytes());

        let mut c = chunk();
        c.type0_font(type0)
            .base_font(name)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);
        put(c);

        let mut c = chunk();
        let mut f = c.cid_font(cid);
        f.subtype(if font.cff {
            CidFontType::Type0
        } else {
            CidFontType::Type2
        })
        .base_font(name)
        .system_info(SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        })
        .font_descriptor(descriptor)
        .default_width(0.0);
        if !font.cff {
            f.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        f.widths().consecutive(0, self.widths.iter().copied());
        f.finish();
        put(c);

        let b = font.face.global_bounding_box();
        let mut c = chunk();
        let mut d = c.font_descriptor(descriptor);
        d.name(name)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                font.scaled(b.x_min),
                font.scaled(b.y_min),
                font.scaled(b.x_max),
                font.scaled(b.y_max),
            ))
            .italic_angle(font.face.italic_angle())
            .ascent(font.scaled(font.face.ascender()))
            .descent(font.scaled(font.face.descender()))
            .cap_height(font.scaled(font.face.capital_height().unwrap_or(700)))
            .stem_v(if font.face.is_bold() { 140.0 } else { 80.0 });
        match subsetter::subset(font.data, font.index, &self.remapper) {
            Ok(bytes) => {
                if font.cff {
                    d.font_file3(file);
                } else {
                    d.font_file2(file);
                }
                d.finish();
                put(c);
                let bytes = super::deflate(&bytes);
                let mut c = chunk();
                let mut s = c.stream(file, &bytes);
                s.filter(pdf_writer::Filter::FlateDecode);
                if font.cff {
                    s.pair(Name(b"Subtype"), Name(b"OpenType"));
                }
                s.finish();
                put(c);
            }
            Err(e) => {
                // The text stays readable (ToUnicode); a viewer substitutes a font.
                tracing::warn!(font = %font.name, error = %e, "the PDF font could not be subset; it is not embedded");
                d.finish();
                put(c);
                let mut c = chunk();
                c.stream(file, b"").finish();
                put(c);
            }
        }

        let mut map = UnicodeCmap::new(
            Name(b"Custom"),
            SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"UCS"),
                supplement: 0,
            },
        );
        for (id, ch) in &self.chars {
            map.pair(*id, *ch);
        }
        let map = super::deflate(&map.finish());
        let mut c = chunk();
        c.stream(cmap, &map).filter(pdf_writer::Filter::FlateDecode);
        put(c);
    }
}

/// A chunk written compactly.
pub(super) fn chunk() -> Chunk {
    Chunk::with_settings(pdf_writer::Settings { pretty: false })
}
