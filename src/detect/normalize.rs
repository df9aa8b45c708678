//! TEMPORARY: replaced by the full normaliser in the next commit.
use std::ops::Range;
/// A form of the text with offsets into the original.
pub struct View { pub text: String, offsets: Vec<u32>, original_len: usize }
impl View {
    /// Maps a byte range of this view back to the original text.
    pub fn original_range(&self, start: usize, end: usize) -> Range<usize> {
        if self.offsets.is_empty() { return 0..0; }
        let s = self.offsets.get(start.min(self.offsets.len() - 1)).copied().unwrap_or(0) as usize;
        let e = if end == 0 { s } else { self.offsets.get((end - 1).min(self.offsets.len() - 1)).copied().unwrap_or(0) as usize + 1 };
        s.min(self.original_len)..e.min(self.original_len).max(s)
    }
}
/// Counts of obfuscation signs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObfuscationSigns { pub invisible: u32, pub unicode_tags: u32, pub bidi_controls: u32, pub homoglyphs: u32, pub leet: u32, pub split_letters: u32 }
/// All forms.
pub struct Normalized { pub normalized: View, pub deobfuscated: View, pub signs: ObfuscationSigns }
/// Normalises.
pub fn normalize(original: &str) -> Normalized {
    let mut text = String::new(); let mut offsets = Vec::new();
    for (i, c) in original.char_indices() { for l in c.to_lowercase() { let mut b = [0u8; 4]; let s = l.encode_utf8(&mut b); for _ in 0..s.len() { offsets.push(i as u32); } text.push(l); } }
    let v = View { text: text.clone(), offsets: offsets.clone(), original_len: original.len() };
    Normalized { normalized: v, deobfuscated: View { text, offsets, original_len: original.len() }, signs: ObfuscationSigns::default() }
}
