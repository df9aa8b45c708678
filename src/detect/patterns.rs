//! Regular-expression matching: which regexes of one text form can match is
//! decided first, then only those regexes are run for positions. A regex
//! with required literals ([`super::required`]) is a candidate when one of
//! them occurs (one Aho-Corasick pass for all); the others are asked of a
//! set search (forward lazy DFAs over small sets of patterns). The sets are
//! built from the patterns' ASCII-mapped forms ([`super::relax`]): ASCII
//! texts are searched as they are, texts in Latin script with a few
//! non-ASCII characters (accents, curly quotes, dashes, emoji) as their
//! mapped copy, both with far smaller automata than full Unicode ones;
//! texts with words of other scripts are asked of relaxed copies, so every
//! search stays a DFA scan. The exact regexes decide, so results never
//! depend on which search proposed a candidate.

use std::collections::HashSet;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, NFA, WhichCaptures, pikevm::PikeVM};
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternID, PatternSet, meta};
use regex_syntax::hir::Hir;

use super::relax::{
    for_ascii_word_texts, has_unicode_word_boundary, mapped_to_ascii, restricted_to_ascii,
    with_open_gaps, without_unicode_word_boundaries, write_mapped_text,
};
use super::required::{fold_text_to_ascii, required_literals};

/// A regex hit: which signal, where in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternHit {
    /// The signal index.
    pub signal: u32,
    /// Byte offset of the match start.
    pub start: usize,
    /// Exclusive end.
    pub end: usize,
}

/// Building a pattern set failed (a pattern does not parse, or the set is
/// over the size limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternSetError(String);

/// The regexes of one text form, with their signal ids.
///
/// Which regexes may match is decided by one set search; only the regexes
/// that may match are then run for positions. Memory, measured on the
/// default policy (`docs/performance.md`, "Memory"):
///
/// * The set is searched forwards only (a lazy DFA, with the PikeVM when the
///   lazy DFA gives up), so no reverse automaton is built for it.
///   `regex::RegexSet` builds one (its engine also serves match positions,
///   which a set never reports), and that reverse NFA was about two thirds of
///   a set's size.
/// * Forms that share patterns and case sensitivity (normalised and
///   deobfuscated) share one set, its search caches and its position
///   regexes; each form reports only its own patterns, in its own order.
/// * A position regex is compiled the first time the set reports it
///   matched; most patterns never match ordinary traffic.
///   [`PatternMatcher::warm_from`] compiles, before a reloaded policy serves,
///   the ones the previous policy had compiled.
///
/// Results are those of `regex::RegexSet` and `regex::Regex` with the same
/// patterns and options: the set search may over-report (relaxed sets), and
/// the exact position regexes remove what it over-reported.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    shared: Option<Arc<Shared>>,
    /// This form's patterns in order: (index in `shared`, signal).
    entries: Vec<(usize, u32)>,
    /// The same entries grouped by the set that searches them (index: set
    /// of `shared`), in order within each, so what one set search ruled out
    /// is found without walking every pattern ([`Self::ruled_out`] runs
    /// after each of the dozens of set searches of a text).
    entries_of_set: Vec<Vec<(usize, u32)>>,
    /// The signals of the entries a set searches, in order, each with its
    /// set. [`Self::search_next_set`] walks these only: most patterns are
    /// gated by literals and in no set.
    set_entries: Vec<(u32, usize)>,
}

/// Patterns compiled once for one or more forms.
#[derive(Debug)]
struct Shared {
    /// The patterns without a required literal in their ASCII-mapped form
    /// ([`mapped_to_ascii`]), searched as sets on ASCII texts and on the
    /// mapped copies of texts that have one ([`write_mapped_text`]).
    set: ChunkedSet,
    /// For each set of `set`, whether none of its patterns can match an
    /// ASCII text or a mapped copy (their ASCII forms match nothing: word
    /// lists in other scripts). Such patterns are grouped apart, so the
    /// other sets are full and these are skipped on those texts; they are
    /// still searched (in `relaxed`) on texts that have no mapped copy.
    dead_on_ascii: Vec<bool>,
    /// Whether every pattern of `set` has a mapped form; if one has not
    /// (a byte class beyond ASCII), `set` holds its ASCII restriction, which
    /// is right on ASCII texts only, and every non-ASCII text is asked of
    /// `relaxed`.
    mappable: bool,
    /// For each pattern, the set of `set` (and of `relaxed`, which is
    /// chunked the same way) that searches it; `None` for gated patterns.
    chunk_of: Vec<Option<usize>>,
    /// Those patterns without Unicode word boundaries, for the non-ASCII
    /// texts that have no mapped copy (see [`super::relax`]); built on the
    /// first such text. `None` inside:
    /// building failed, and then every pattern of a searched set counts as
    /// possible (the exact regexes decide).
    relaxed: OnceLock<Option<ChunkedSet>>,
    /// The patterns with required literals: candidates when one of their
    /// literals occurs in the text.
    gate: Option<LiteralGate>,
    /// For each gated pattern with a Unicode word boundary, the same pattern
    /// without it, built on its first candidate text that has no mapped
    /// copy (other scripts): there the exact regex leaves its lazy DFA for
    /// the PikeVM, so candidates are first checked with this (a DFA scan),
    /// as the relaxed sets do for the others. Texts with a mapped copy are
    /// checked with `mapped_checks` instead, which keeps word boundaries.
    relaxed_gated: Vec<Option<OnceLock<Option<meta::Regex>>>>,
    /// For each gated pattern, a forward-only lazy DFA of its ASCII-mapped
    /// form ([`mapped_to_ascii`]), built the first time the gate proposes
    /// it: it asks "can the pattern match" of ASCII texts and of mapped
    /// copies before a position regex is compiled or run ([`Self::find`]).
    /// Most candidates do not match the text whose literal woke them, and
    /// this costs half a position regex to build (one NFA, no reverse one)
    /// and, on accented text, a DFA scan where the exact regex with a
    /// Unicode word boundary would run the PikeVM. `None` inside: the
    /// pattern has no mapped form, or it failed to build.
    mapped_checks: Vec<OnceLock<Option<Box<SetEngine>>>>,
    patterns: Vec<String>,
    case_insensitive: bool,
    /// Lazily compiled `patterns` (`None` if one failed, which the set makes
    /// practically impossible: it compiled the same pattern), for non-ASCII
    /// texts.
    regexes: Vec<OnceLock<Option<meta::Regex>>>,
    /// The same, compiled from each pattern's ASCII restriction
    /// ([`restricted_to_ascii`]) for ASCII texts: the same spans there, and
    /// smaller automata (less memory per compiled pattern, cheaper lazy-DFA
    /// states on new text).
    ascii_regexes: Vec<OnceLock<Option<meta::Regex>>>,
    /// The same again, compiled for non-ASCII texts whose non-ASCII
    /// characters are none of them word characters (curly quotes, dashes,
    /// arrows, bullets, emoji: most non-ASCII prose in English) with every
    /// Unicode word boundary made an ASCII one and the non-ASCII word
    /// characters taken out of classes and literals
    /// ([`for_ascii_word_texts`]). There it matches where the exact regex
    /// does, and it stays a lazy-DFA scan where the exact regex would give
    /// up at the first non-ASCII byte and run the PikeVM over the whole
    /// text; its automata are smaller too. `None` inside: the rewrite
    /// changes nothing (the exact regex answers as cheaply) or it failed to
    /// build; the exact regex answers.
    word_ascii_regexes: Vec<OnceLock<Option<meta::Regex>>>,
}

/// What a text is made of, as far as choosing a position regex goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// ASCII only: the ASCII restrictions answer ([`restricted_to_ascii`]).
    Ascii,
    /// Some non-ASCII characters, none of them a word character: the
    /// regexes with ASCII word boundaries answer (`word_ascii_regexes`).
    AsciiWords,
    /// Non-ASCII word characters (accents, other scripts): the exact
    /// regexes answer.
    Unicode,
}

impl TextKind {
    /// Reads `text` once per scan (a word-character lookup only for its
    /// non-ASCII characters).
    fn of(text: &str) -> Self {
        if text.is_ascii() {
            Self::Ascii
        } else if text
            .chars()
            .any(|c| !c.is_ascii() && regex_syntax::is_word_character(c))
        {
            Self::Unicode
        } else {
            Self::AsciiWords
        }
    }
}

/// Size limit for one compiled regex; generous but bounded.
const REGEX_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// Size limit for the set of all regexes of one text form. The set holds
/// every pattern of the policy (hundreds in the default one), so it gets more
/// room than any single regex; each pattern is still held to
/// [`REGEX_SIZE_LIMIT`] by [`check_pattern`].
const SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// Cache capacity of each position regex's lazy DFAs (forward and reverse):
/// the regex crate's default. 256 KB saved 20 MB over 9,000 new prompts
/// but cost 15% more CPU (caches cleared and rebuilt).
const POSITION_DFA_CACHE_CAPACITY: usize = 2 * 1024 * 1024;

/// A pattern that does not compile: the regex parser's explanation (with its
/// pointer to the mistake) or the size limit it exceeds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

/// Checks that one pattern compiles as the matcher will compile it (its
/// syntax, and its size held to [`REGEX_SIZE_LIMIT`]), so a policy loader
/// can report the failing pattern and its rule before building the whole
/// set. Only the forward NFA is built: the checks need no more, and
/// building a full regex for every pattern of every form was most of the
/// time a policy took to compile.
pub fn check_pattern(pattern: &str, case_insensitive: bool) -> Result<(), PatternError> {
    let hir = syntax::parse_with(pattern, &syntax_config(case_insensitive))
        .map_err(|e| PatternError(e.to_string()))?;
    thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .which_captures(WhichCaptures::None),
        )
        .build_from_hir(&hir)
        .map(drop)
        .map_err(|e| match e.size_limit() {
            Some(limit) => PatternError(format!(
                "compiled regex exceeds the size limit of {limit} bytes"
            )),
            None => PatternError(e.to_string()),
        })
}

/// Compiles the regex that reports one pattern's positions. Matches are
/// those of `regex::Regex` with the same pattern and case option (same
/// syntax and match semantics). It is built without the regex crate's
/// literal optimisations: it only ever runs on texts already known to hold
/// a candidate, where they would save little, while extracting them was
/// most of the cost of the first request that needed each regex (new text
/// compiled hundreds of them).
fn compile_one(pattern: &str, case_insensitive: bool) -> Option<meta::Regex> {
    position_regex_builder(case_insensitive).build(pattern).ok()
}

/// `pattern` with its accented Latin letters made optional
/// ([`super::accents::accents_optional_source`]), as a pattern string that compiles
/// under the same limits; `None` if it has no such letter written as itself
/// (or the relaxed form would not compile, and the pattern stays as written).
pub fn accent_optional_pattern(pattern: &str, case_insensitive: bool) -> Option<String> {
    if pattern.is_ascii() {
        return None;
    }
    let relaxed = super::accents::accents_optional_source(pattern)?;
    check_pattern(&relaxed, case_insensitive).ok()?;
    Some(relaxed)
}

/// `pattern` restricted to ASCII ([`restricted_to_ascii`]) as a position
/// regex: the spans of [`compile_one`]'s regex on ASCII text.
fn compile_ascii(pattern: &str, case_insensitive: bool) -> Option<meta::Regex> {
    let hir = parse_all(&[pattern.to_string()], case_insensitive)
        .ok()?
        .pop()?;
    position_regex_builder(case_insensitive)
        .build_from_hir(&restricted_to_ascii(hir))
        .ok()
}

/// `pattern` as it behaves on texts whose word characters are all ASCII
/// ([`for_ascii_word_texts`]) as a position regex: the spans of
/// [`compile_one`]'s regex on those texts. `None` when the rewrite leaves
/// the pattern as it is (the exact regex is as cheap) or it fails to build.
fn compile_word_ascii(pattern: &str, case_insensitive: bool) -> Option<meta::Regex> {
    let hir = parse_all(&[pattern.to_string()], case_insensitive)
        .ok()?
        .pop()?;
    let rewritten = for_ascii_word_texts(hir.clone());
    if rewritten == hir {
        return None;
    }
    position_regex_builder(case_insensitive)
        .build_from_hir(&rewritten)
        .ok()
}

/// How every position regex is built (see [`compile_one`]).
fn position_regex_builder(case_insensitive: bool) -> meta::Builder {
    let mut builder = meta::Regex::builder();
    builder.syntax(syntax_config(case_insensitive)).configure(
        meta::Regex::config()
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .which_captures(WhichCaptures::Implicit)
            .auto_prefilter(false)
            .hybrid_cache_capacity(POSITION_DFA_CACHE_CAPACITY),
    );
    builder
}

impl PatternMatcher {
    /// Builds the matcher of one form from `(pattern, signal)` pairs; every
    /// pattern must already have passed [`check_pattern`].
    pub fn new(
        patterns: Vec<(String, u32)>,
        case_insensitive: bool,
    ) -> Result<Self, PatternSetError> {
        let mut out = Self::new_shared(vec![patterns], case_insensitive)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Builds the matchers of several forms with the same case sensitivity
    /// on one shared set (one matcher per entry of `forms`, in order). Each
    /// matcher reports exactly what [`PatternMatcher::new`] with its own
    /// patterns would; the set holds each distinct pattern once.
    pub fn new_shared(
        forms: Vec<Vec<(String, u32)>>,
        case_insensitive: bool,
    ) -> Result<Vec<Self>, PatternSetError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut entries_per_form = Vec::with_capacity(forms.len());
        for form in forms {
            let mut entries = Vec::with_capacity(form.len());
            for (pattern, signal) in form {
                let idx = match index.get(&pattern) {
                    Some(idx) => *idx,
                    None => {
                        patterns.push(pattern.clone());
                        index.insert(pattern, patterns.len() - 1);
                        patterns.len() - 1
                    }
                };
                entries.push((idx, signal));
            }
            entries_per_form.push(entries);
        }
        let shared = if patterns.is_empty() {
            None
        } else {
            Some(Arc::new(Shared::new(patterns, case_insensitive)?))
        };
        Ok(entries_per_form
            .into_iter()
            .map(|entries| Self {
                shared: if entries.is_empty() {
                    None
                } else {
                    shared.clone()
                },
                entries_of_set: shared
                    .as_deref()
                    .map(|shared| shared.group_by_set(&entries))
                    .unwrap_or_default(),
                set_entries: shared
                    .as_deref()
                    .map(|shared| shared.with_sets(&entries))
                    .unwrap_or_default(),
                entries,
            })
            .collect())
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// This form's patterns, in order (a pattern listed for several signals
    /// appears once per signal).
    pub fn patterns(&self) -> Vec<&str> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter_map(|(idx, _)| shared.patterns.get(*idx).map(String::as_str))
            .collect()
    }

    /// This form's patterns that no required word gates, each with its
    /// signal, in order: each is searched (in a small set) over every text
    /// its rule is still live for, so each adds to the cost of every
    /// request, where a gated pattern costs nothing on texts without its
    /// word. Patterns that only match other scripts are left out: ASCII and
    /// Latin-script texts skip them.
    pub fn searched_on_every_text(&self) -> Vec<(&str, u32)> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        self.entries
            .iter()
            .filter(|(idx, _)| match shared.chunk_of.get(*idx) {
                Some(Some(chunk)) => !shared.dead_on_ascii.get(*chunk).copied().unwrap_or(false),
                _ => false,
            })
            .filter_map(|(idx, signal)| shared.patterns.get(*idx).map(|p| (p.as_str(), *signal)))
            .collect()
    }

    /// Compiles now the position regexes of this matcher's patterns that
    /// `previous` (the policy being replaced) had compiled, i.e. the patterns
    /// that matched its traffic, the mapped checks of the gated patterns its
    /// traffic proposed, and the relaxed sets and relaxed gated regexes that
    /// `previous` had built (it had seen non-ASCII text), so the first
    /// requests after a reload do not pay for compiling them. Returns how
    /// many position regexes and checks were compiled.
    pub fn warm_from(&self, previous: &PatternMatcher) -> usize {
        let (Some(shared), Some(old)) = (&self.shared, &previous.shared) else {
            return 0;
        };
        if shared.case_insensitive != old.case_insensitive {
            return 0;
        }
        if old.relaxed.get().is_some() {
            shared.relaxed.get_or_init(|| shared.build_relaxed());
        }
        let patterns = &old.patterns;
        let compiled = |regexes: &[OnceLock<Option<meta::Regex>>]| -> HashSet<&str> {
            patterns
                .iter()
                .zip(regexes)
                .filter(|(_, r)| r.get().is_some())
                .map(|(p, _)| p.as_str())
                .collect()
        };
        // Each kind of position regex: what the previous matcher compiled,
        // and where this one keeps its own.
        let position_regexes = [
            (compiled(&old.regexes), &shared.regexes, TextKind::Unicode),
            (
                compiled(&old.ascii_regexes),
                &shared.ascii_regexes,
                TextKind::Ascii,
            ),
            (
                compiled(&old.word_ascii_regexes),
                &shared.word_ascii_regexes,
                TextKind::AsciiWords,
            ),
        ];
        let hot_relaxed: HashSet<&str> = old
            .patterns
            .iter()
            .zip(&old.relaxed_gated)
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.get().is_some()))
            .map(|(p, _)| p.as_str())
            .collect();
        let hot_checks: HashSet<&str> = old
            .patterns
            .iter()
            .zip(&old.mapped_checks)
            .filter(|(_, c)| c.get().is_some_and(Option::is_some))
            .map(|(p, _)| p.as_str())
            .collect();
        let mut n = 0;
        for (idx, _) in &self.entries {
            let Some(pattern) = shared.patterns.get(*idx) else {
                continue;
            };
            for (hot, regexes, kind) in &position_regexes {
                if hot.contains(pattern.as_str())
                    && regexes.get(*idx).is_some_and(|r| r.get().is_none())
                    && shared.regex(*idx, *kind).is_some()
                {
                    n += 1;
                }
            }
            if hot_relaxed.contains(pattern.as_str()) {
                shared.relaxed_gated_regex(*idx);
            }
            if hot_checks.contains(pattern.as_str())
                && shared
                    .mapped_checks
                    .get(*idx)
                    .is_some_and(|c| c.get().is_none())
                && shared.mapped_check(*idx).is_some()
            {
                n += 1;
            }
        }
        n
    }

    /// Calls `on_hit` for matches of every regex that matches `text`, at most
    /// `max_hits_per_regex` each. The set search proposes candidates; each
    /// one's exact regex decides, so which set was asked never changes a hit.
    pub fn scan(&self, text: &str, max_hits_per_regex: usize, on_hit: impl FnMut(PatternHit)) {
        self.scan_with_memo(
            text,
            max_hits_per_regex,
            &mut ScanMemos::default(),
            |_| true,
            on_hit,
        );
    }

    /// Calls `mark` with every signal of this form that may have a hit in
    /// `text`: those with a pattern whose required literal occurs, and those
    /// with a pattern without a required literal whose set was not searched
    /// yet (only a set search could tell) or reported it. The first call for
    /// a text costs one Aho-Corasick pass, kept in `memos` for what follows.
    pub fn possible_signals(&self, text: &str, memos: &mut ScanMemos, mut mark: impl FnMut(u32)) {
        let Some(shared) = &self.shared else { return };
        let memo = memos.for_text(shared, text);
        for (idx, signal) in &self.entries {
            let Ok(id) = PatternID::new(*idx) else {
                continue;
            };
            let set_possible = match shared.chunk_of.get(*idx) {
                Some(Some(chunk)) => {
                    !memo.searched.get(*chunk).copied().unwrap_or(false)
                        || memo.searched_hits.contains(id)
                }
                _ => false,
            };
            if set_possible || memo.gated.contains(id) {
                mark(*signal);
            }
        }
    }

    /// Searches one set, not yet searched for `text`, that holds a pattern
    /// of a signal `needed` accepts (the first such in pattern order), and
    /// keeps what it reported in `memos`; `None` if there is none left.
    /// Searching set by set lets the caller drop the rules a search rules
    /// out before the next one: [`Self::ruled_out`] says, for each form,
    /// which of its patterns the returned search ruled out.
    pub fn search_next_set(
        &self,
        text: &str,
        memos: &mut ScanMemos,
        needed: impl Fn(u32) -> bool,
    ) -> Option<SearchedSet> {
        self.search_next_set_from(text, memos, &mut 0, needed)
    }

    /// [`Self::search_next_set`] that starts its walk at entry `*from` and
    /// leaves `*from` after the entry it searched (or at the end), so a
    /// caller that asks again and again walks the entries once in all
    /// rather than once per search (dozens of searches per text, hundreds
    /// of entries). Only right if an entry passed over stays uninteresting:
    /// `needed` may only reject more signals from one call to the next
    /// (the engine's live rules only ever shrink), and a searched set stays
    /// searched.
    pub fn search_next_set_from(
        &self,
        text: &str,
        memos: &mut ScanMemos,
        from: &mut usize,
        needed: impl Fn(u32) -> bool,
    ) -> Option<SearchedSet> {
        let shared = self.shared.as_ref()?;
        let slot = memos.slot_for_text(shared, text);
        let memo = memos.memos.get_mut(slot)?;
        while let Some((signal, chunk)) = self.set_entries.get(*from) {
            *from += 1;
            if !memo.searched.get(*chunk).copied().unwrap_or(true) && needed(*signal) {
                shared.search_chunk(text, *chunk, memo);
                return Some(SearchedSet {
                    memo: slot,
                    chunk: *chunk,
                });
            }
        }
        None
    }

    /// Calls `mark` with the signal of each of this form's patterns that
    /// `searched` ruled out on `text`: the patterns of the searched set that
    /// it did not report, if `text` is the text it searched on this form's
    /// shared set (else none). Each is reported once per search and only
    /// for the search that decided it, so a caller that counted the marks
    /// of [`Self::possible_signals`] per signal can subtract these and keep
    /// the count of what [`Self::possible_signals`] would mark now, without
    /// walking every pattern again.
    pub fn ruled_out(
        &self,
        text: &str,
        memos: &ScanMemos,
        searched: SearchedSet,
        mut mark: impl FnMut(u32),
    ) {
        let Some(shared) = &self.shared else { return };
        if memos.position(shared, text) != Some(searched.memo) {
            return;
        }
        let Some(memo) = memos.memos.get(searched.memo) else {
            return;
        };
        for (idx, signal) in self
            .entries_of_set
            .get(searched.chunk)
            .into_iter()
            .flatten()
        {
            if PatternID::new(*idx).is_ok_and(|id| !memo.searched_hits.contains(id)) {
                mark(*signal);
            }
        }
    }

    /// [`Self::scan`] for the signals `needed` accepts only: a set of
    /// patterns none of which a needed signal lists is not searched, and no
    /// regex of an unneeded signal is run. `memos` keeps what was searched
    /// and found per shared set and text, so the normalised and deobfuscated
    /// forms, which share a set and are the same text for most prose, pay
    /// for one search.
    pub fn scan_with_memo(
        &self,
        text: &str,
        max_hits_per_regex: usize,
        memos: &mut ScanMemos,
        needed: impl Fn(u32) -> bool,
        mut on_hit: impl FnMut(PatternHit),
    ) {
        let Some(shared) = &self.shared else { return };
        let memo = memos.for_text(shared, text);
        let mut chunks = vec![false; shared.set.chunks.len()];
        for (idx, signal) in &self.entries {
            if let Some(Some(chunk)) = shared.chunk_of.get(*idx)
                && needed(*signal)
                && let Some(slot) = chunks.get_mut(*chunk)
            {
                *slot = true;
            }
        }
        shared.search_sets(text, &chunks, memo);
        let kind = memo.kind;
        let mapped_text = memo.mapped.then_some(memo.mapped_text.as_str());
        for (idx, signal) in &self.entries {
            if !needed(*signal) {
                continue;
            }
            let Ok(id) = PatternID::new(*idx) else {
                continue;
            };
            if !(memo.gated.contains(id) || memo.searched_hits.contains(id)) {
                continue;
            }
            let spans = memo
                .found
                .entry((*idx, max_hits_per_regex))
                .or_insert_with(|| shared.find(*idx, text, kind, mapped_text, max_hits_per_regex));
            for (start, end) in spans.iter() {
                on_hit(PatternHit {
                    signal: *signal,
                    start: *start,
                    end: *end,
                });
            }
        }
    }
}

/// What pattern scans of one text found so far, per shared set, for the
/// next scan of the same text (see [`PatternMatcher::scan_with_memo`]).
#[derive(Debug, Default)]
pub struct ScanMemos {
    memos: Vec<ScanMemo>,
}

/// One set search made by [`PatternMatcher::search_next_set`]: the memo
/// (shared set and text) it was made for and which set of it was searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchedSet {
    memo: usize,
    chunk: usize,
}

impl ScanMemos {
    /// The memo of `shared` for `text`, made if there is none yet. The
    /// normalised and deobfuscated forms share a set and often differ, so
    /// one set may have a memo for each.
    fn for_text(&mut self, shared: &Arc<Shared>, text: &str) -> &mut ScanMemo {
        let slot = self.slot_for_text(shared, text);
        &mut self.memos[slot]
    }

    /// The index of the memo of `shared` for `text`, made if there is none
    /// yet. Memos are only ever added, so an index stays valid.
    fn slot_for_text(&mut self, shared: &Arc<Shared>, text: &str) -> usize {
        match self.position(shared, text) {
            Some(slot) => slot,
            None => {
                let key = Arc::as_ptr(shared) as usize;
                self.memos.push(ScanMemo::new(key, shared, text));
                self.memos.len() - 1
            }
        }
    }

    /// The index of the memo of `shared` for `text`, if there is one.
    fn position(&self, shared: &Arc<Shared>, text: &str) -> Option<usize> {
        let key = Arc::as_ptr(shared) as usize;
        self.memos
            .iter()
            .position(|m| m.key == key && m.text == text)
    }
}

/// One shared set's results on one text.
#[derive(Debug)]
struct ScanMemo {
    /// The shared set (by address).
    key: usize,
    text: String,
    /// Gated patterns whose required literal occurs.
    gated: PatternSet,
    /// Which sets of `Shared::set` were searched.
    searched: Vec<bool>,
    /// Set-searched patterns the searched sets reported.
    searched_hits: PatternSet,
    /// Spans found by each candidate's exact regex (by pattern and hit
    /// limit), filled as asked.
    found: std::collections::HashMap<(usize, usize), Vec<(usize, usize)>>,
    /// What `text` is made of: which sets and position regexes answer it
    /// (asked once per text, not at each of its dozens of searches).
    kind: TextKind,
    /// Whether `mapped_text` holds the mapped copy of a non-ASCII `text`
    /// that the sets search instead of the relaxed sets.
    mapped: bool,
    mapped_text: String,
}

impl ScanMemo {
    /// A memo of `shared` started on `text`.
    fn new(key: usize, shared: &Shared, text: &str) -> Self {
        let mut memo = Self {
            key,
            text: String::new(),
            gated: PatternSet::new(shared.patterns.len()),
            searched: vec![false; shared.set.chunks.len()],
            searched_hits: PatternSet::new(shared.patterns.len()),
            found: Default::default(),
            kind: TextKind::Ascii,
            mapped: false,
            mapped_text: String::new(),
        };
        memo.start(shared, text);
        memo
    }

    /// Forgets the previous text and finds the required literals of `text`.
    fn start(&mut self, shared: &Shared, text: &str) {
        self.text.clear();
        self.text.push_str(text);
        self.kind = TextKind::of(text);
        self.mapped = self.kind != TextKind::Ascii
            && shared.mappable
            && write_mapped_text(text, &mut self.mapped_text);
        self.gated.clear();
        if let Some(gate) = &shared.gate {
            gate.candidates(text, &mut self.gated);
        }
        self.searched.iter_mut().for_each(|s| *s = false);
        self.searched_hits.clear();
        self.found.clear();
    }
}

impl Shared {
    /// The signals of the `entries` (pattern index, signal) a set searches,
    /// in order, each with its set.
    fn with_sets(&self, entries: &[(usize, u32)]) -> Vec<(u32, usize)> {
        entries
            .iter()
            .filter_map(|(idx, signal)| match self.chunk_of.get(*idx) {
                Some(Some(chunk)) => Some((*signal, *chunk)),
                _ => None,
            })
            .collect()
    }

    /// `entries` (pattern index, signal) grouped by the set that searches
    /// each pattern, in their order; gated patterns are in no set.
    fn group_by_set(&self, entries: &[(usize, u32)]) -> Vec<Vec<(usize, u32)>> {
        let mut groups = vec![Vec::new(); self.set.chunks.len()];
        for (idx, signal) in entries {
            if let Some(Some(chunk)) = self.chunk_of.get(*idx)
                && let Some(group) = groups.get_mut(*chunk)
            {
                group.push((*idx, *signal));
            }
        }
        groups
    }

    /// Splits `patterns` into those gated by required literals and those
    /// searched as sets, and builds both.
    fn new(patterns: Vec<String>, case_insensitive: bool) -> Result<Self, PatternSetError> {
        let hirs = parse_all(&patterns, case_insensitive)?;
        let hirs_len = hirs.len();
        let mut gated: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
        let mut searched: Vec<(usize, Hir)> = Vec::new();
        let mut relaxed_gated = Vec::with_capacity(hirs.len());
        for (idx, hir) in hirs.into_iter().enumerate() {
            match required_literals(&hir) {
                Some(literals) => {
                    relaxed_gated.push(has_unicode_word_boundary(&hir).then(OnceLock::new));
                    gated.push((idx, literals));
                }
                None => {
                    relaxed_gated.push(None);
                    searched.push((idx, hir));
                }
            }
        }
        let mut mappable = true;
        let ascii_forms: Vec<(usize, Hir, Hir)> = searched
            .into_iter()
            .map(|(idx, hir)| {
                let ascii = match mapped_to_ascii(hir.clone()) {
                    Some(mapped) => mapped,
                    None => {
                        mappable = false;
                        restricted_to_ascii(hir.clone())
                    }
                };
                (idx, hir, with_open_gaps(ascii))
            })
            .collect();
        let (live, dead): (Vec<_>, Vec<_>) = ascii_forms
            .into_iter()
            .partition(|(_, _, ascii)| !matches_nothing(ascii));
        let live_groups = group_by_cost(live);
        let dead_groups = group_by_cost(dead);
        let dead_on_ascii: Vec<bool> = live_groups
            .iter()
            .map(|_| false)
            .chain(dead_groups.iter().map(|_| true))
            .collect();
        let groups: Vec<Vec<(usize, Hir, Hir)>> =
            live_groups.into_iter().chain(dead_groups).collect();
        let mut chunk_of = vec![None; hirs_len];
        for (chunk, group) in groups.iter().enumerate() {
            for (idx, _, _) in group {
                if let Some(slot) = chunk_of.get_mut(*idx) {
                    *slot = Some(chunk);
                }
            }
        }
        let ascii_groups = groups
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|(idx, _, ascii)| (idx, ascii))
                    .collect()
            })
            .collect();
        Ok(Self {
            set: ChunkedSet::from_groups(ascii_groups)?,
            dead_on_ascii,
            mappable,
            chunk_of,
            relaxed: OnceLock::new(),
            gate: LiteralGate::new(gated),
            relaxed_gated,
            mapped_checks: patterns.iter().map(|_| OnceLock::new()).collect(),
            regexes: patterns.iter().map(|_| OnceLock::new()).collect(),
            ascii_regexes: patterns.iter().map(|_| OnceLock::new()).collect(),
            word_ascii_regexes: patterns.iter().map(|_| OnceLock::new()).collect(),
            patterns,
            case_insensitive,
        })
    }

    /// Searches the sets marked in `chunks` that `memo` has not searched
    /// yet, adding the patterns they report to `memo.searched_hits`.
    ///
    /// On ASCII text the sets of mapped patterns answer (nearly) exactly,
    /// and on the mapped copy of a Latin-script text they report a
    /// superset. Exact Unicode sets would leave their lazy DFAs at the
    /// first non-ASCII byte for the PikeVM over every pattern (about a
    /// second for 4 KB with the default policy); the relaxed sets, for the
    /// texts that have no mapped copy, stay DFA scans and report a superset
    /// too. The exact regexes narrow every superset ([`Self::find`]).
    fn search_sets(&self, text: &str, chunks: &[bool], memo: &mut ScanMemo) {
        for (chunk, wanted) in chunks.iter().enumerate() {
            if *wanted {
                self.search_chunk(text, chunk, memo);
            }
        }
    }

    /// Searches set `chunk` (of `set` on ASCII text and mapped copies, or
    /// of `relaxed` on other non-ASCII text, see [`Self::search_sets`])
    /// unless `memo` says it was searched.
    fn search_chunk(&self, text: &str, chunk: usize, memo: &mut ScanMemo) {
        let Some(searched) = memo.searched.get_mut(chunk) else {
            return;
        };
        if *searched {
            return;
        }
        *searched = true;
        let ascii_or_mapped = memo.kind == TextKind::Ascii || memo.mapped;
        if ascii_or_mapped && self.dead_on_ascii.get(chunk).copied().unwrap_or(false) {
            return;
        }
        if memo.kind == TextKind::Ascii {
            self.set
                .which_match_in(chunk, text, &mut memo.searched_hits);
        } else if memo.mapped {
            self.set
                .which_match_in(chunk, &memo.mapped_text, &mut memo.searched_hits);
        } else if let Some(relaxed) = self.relaxed.get_or_init(|| self.build_relaxed()) {
            relaxed.which_match_in(chunk, text, &mut memo.searched_hits);
        } else {
            self.set.all_of(chunk, &mut memo.searched_hits);
        }
    }

    /// Spans of pattern `idx` in `text`, at most `max` of them; `kind`:
    /// what `text` is made of, `mapped`: its mapped copy if it has one.
    ///
    /// A gated pattern (the gate only saw one of its literals) is first
    /// asked of its mapped check ([`Self::mapped_check`]) on the text or
    /// its mapped copy, unless its position regex for this text is already
    /// compiled and is itself a DFA scan there; the check reports a
    /// superset, so where it does not match the exact regex cannot either.
    /// On non-ASCII text without a mapped copy, a gated pattern with a
    /// Unicode word boundary is checked with its relaxed form instead (a
    /// DFA scan too): the exact regex would leave its lazy DFA for the
    /// PikeVM there.
    fn find(
        &self,
        idx: usize,
        text: &str,
        kind: TextKind,
        mapped: Option<&str>,
        max: usize,
    ) -> Vec<(usize, usize)> {
        if self.ruled_out_by_checks(idx, text, kind, mapped) {
            return Vec::new();
        }
        self.regex(idx, kind).map_or_else(Vec::new, |regex| {
            regex
                .find_iter(text)
                .take(max)
                .map(|m| (m.start(), m.end()))
                .collect()
        })
    }

    /// Whether a check cheaper than gated pattern `idx`'s exact regex says
    /// it cannot match `text` (see [`Self::find`]); `false` for patterns a
    /// set searched (the set already asked) and when no check applies.
    fn ruled_out_by_checks(
        &self,
        idx: usize,
        text: &str,
        kind: TextKind,
        mapped: Option<&str>,
    ) -> bool {
        if !matches!(self.chunk_of.get(idx), Some(None)) {
            return false;
        }
        let ascii = kind == TextKind::Ascii;
        let unicode_boundary = self.relaxed_gated.get(idx).is_some_and(Option::is_some);
        let checked_text = if ascii { Some(text) } else { mapped };
        if let Some(checked_text) = checked_text {
            let exact_is_dfa_scan = kind != TextKind::Unicode || !unicode_boundary;
            if exact_is_dfa_scan && self.regex_compiled(idx, kind) {
                return false;
            }
            if let Some(check) = self.mapped_check(idx) {
                return !check.is_match(checked_text);
            }
        }
        !ascii
            && self
                .relaxed_gated_regex(idx)
                .is_some_and(|r| !r.is_match(text))
    }

    /// Whether pattern `idx`'s position regex for texts of `kind` is
    /// compiled already.
    fn regex_compiled(&self, idx: usize, kind: TextKind) -> bool {
        let compiled = |regexes: &[OnceLock<Option<meta::Regex>>]| {
            regexes.get(idx).is_some_and(|r| r.get().is_some())
        };
        match kind {
            TextKind::Ascii => compiled(&self.ascii_regexes),
            TextKind::AsciiWords => {
                match self.word_ascii_regexes.get(idx).and_then(OnceLock::get) {
                    Some(Some(_)) => true,
                    Some(None) => compiled(&self.regexes),
                    None => false,
                }
            }
            TextKind::Unicode => compiled(&self.regexes),
        }
    }

    /// The mapped check of pattern `idx` (see `mapped_checks`), built on
    /// first use; `None` if the pattern has no mapped form.
    fn mapped_check(&self, idx: usize) -> Option<&SetEngine> {
        self.mapped_checks
            .get(idx)?
            .get_or_init(|| {
                let pattern = self.patterns.get(idx)?;
                let hir = parse_all(std::slice::from_ref(pattern), self.case_insensitive)
                    .ok()?
                    .pop()?;
                let mapped = with_open_gaps(mapped_to_ascii(hir)?);
                SetEngine::from_hirs(std::slice::from_ref(&mapped))
                    .ok()
                    .map(Box::new)
            })
            .as_deref()
    }

    /// The relaxed form of gated pattern `idx`, if it has one (see
    /// `relaxed_gated`); `None` also if it failed to build, and then the
    /// exact regex decides alone.
    fn relaxed_gated_regex(&self, idx: usize) -> Option<&meta::Regex> {
        let slot = self.relaxed_gated.get(idx)?.as_ref()?;
        slot.get_or_init(|| {
            let pattern = self.patterns.get(idx)?;
            let hir = parse_all(std::slice::from_ref(pattern), self.case_insensitive)
                .ok()?
                .pop()?;
            position_regex_builder(self.case_insensitive)
                .build_from_hir(&without_unicode_word_boundaries(hir))
                .ok()
        })
        .as_ref()
    }

    fn build_relaxed(&self) -> Option<ChunkedSet> {
        let mut groups = Vec::with_capacity(self.set.ids.len());
        for ids in &self.set.ids {
            let patterns: Vec<String> = ids
                .iter()
                .filter_map(|idx| self.patterns.get(*idx).cloned())
                .collect();
            let hirs = parse_all(&patterns, self.case_insensitive).ok()?;
            groups.push(
                ids.iter()
                    .copied()
                    .zip(hirs)
                    .map(|(idx, hir)| (idx, with_open_gaps(without_unicode_word_boundaries(hir))))
                    .collect(),
            );
        }
        ChunkedSet::from_groups(groups).ok()
    }

    /// The position regex of pattern `idx` for texts of `kind`: its ASCII
    /// restriction for ASCII texts, its form with ASCII word boundaries for
    /// texts whose word characters are all ASCII (when it has Unicode ones),
    /// else the exact one.
    fn regex(&self, idx: usize, kind: TextKind) -> Option<&meta::Regex> {
        let pattern = self.patterns.get(idx)?;
        match kind {
            TextKind::Ascii => self
                .ascii_regexes
                .get(idx)?
                .get_or_init(|| compile_ascii(pattern, self.case_insensitive))
                .as_ref(),
            TextKind::AsciiWords => {
                let word_ascii = self
                    .word_ascii_regexes
                    .get(idx)?
                    .get_or_init(|| compile_word_ascii(pattern, self.case_insensitive))
                    .as_ref();
                word_ascii.or_else(|| self.regex(idx, TextKind::Unicode))
            }
            TextKind::Unicode => self
                .regexes
                .get(idx)?
                .get_or_init(|| compile_one(pattern, self.case_insensitive))
                .as_ref(),
        }
    }
}

/// A set search split over small sets of patterns (see [`group_by_cost`]).
///
/// One lazy DFA over hundreds of patterns searched with overlapping
/// semantics tracks so many NFA states at once that building each DFA state
/// is slow and its cache fills and gives up (PikeVM fallback) on ordinary
/// prose; several small sets stay cheap to determinise and each is a plain
/// DFA scan once warm.
#[derive(Debug)]
struct ChunkedSet {
    chunks: Vec<SetEngine>,
    /// For each set, the index each of its patterns is reported as.
    ids: Vec<Vec<usize>>,
}

impl ChunkedSet {
    /// One set per group of patterns, each given with the index it is
    /// reported as.
    fn from_groups(groups: Vec<Vec<(usize, Hir)>>) -> Result<Self, PatternSetError> {
        let mut chunks = Vec::with_capacity(groups.len());
        let mut ids = Vec::with_capacity(groups.len());
        for group in groups {
            let (group_ids, hirs): (Vec<usize>, Vec<Hir>) = group.into_iter().unzip();
            chunks.push(SetEngine::from_hirs(&hirs)?);
            ids.push(group_ids);
        }
        Ok(Self { chunks, ids })
    }

    /// The indices of the patterns it searches.
    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.ids.iter().flatten().copied()
    }

    /// Adds the indices of every pattern of set `chunk` to `out`: what may
    /// match when the set cannot be searched.
    fn all_of(&self, chunk: usize, out: &mut PatternSet) {
        for idx in self.ids.get(chunk).into_iter().flatten() {
            if let Ok(id) = PatternID::new(*idx) {
                out.insert(id);
            }
        }
    }

    /// Adds the indices of the patterns of set `chunk` that match `text` to
    /// `out`.
    fn which_match_in(&self, chunk: usize, text: &str, out: &mut PatternSet) {
        let Some(set) = self.chunks.get(chunk) else {
            return;
        };
        for id in set.which_match(text).iter() {
            let idx = self.ids.get(chunk).and_then(|ids| ids.get(id.as_usize()));
            if let Some(id) = idx.and_then(|idx| PatternID::new(*idx).ok()) {
                out.insert(id);
            }
        }
    }
}

/// Patterns that each need one of a few literals in any match (see
/// [`super::required`]): one Aho-Corasick pass over the text finds which
/// literals occur, and only their patterns become candidates. Most policy
/// patterns need a word ordinary text rarely holds, so most are never
/// searched at all.
#[derive(Debug)]
struct LiteralGate {
    /// Every required literal, ASCII lower-cased and cut to
    /// [`MAX_GATE_LITERAL_LEN`] bytes, matched ASCII-case-insensitively
    /// (which can only find more).
    literals: AhoCorasick,
    /// For literal `i`, the patterns that require it are
    /// `pattern_ids[pattern_starts[i]..pattern_starts[i + 1]]`: one flat list
    /// rather than a `Vec` per literal (tens of thousands of small heap
    /// blocks kept for the policy's lifetime).
    pattern_starts: Vec<usize>,
    pattern_ids: Vec<PatternID>,
}

/// Longest literal the gate keeps. A required literal is cut to its first
/// `MAX_GATE_LITERAL_LEN` bytes: a prefix occurs wherever the literal does,
/// so the gate still never misses a pattern, it only proposes a few more.
/// Policy phrases are long (18.6 bytes on average; 47,133 distinct in the
/// default policy of session 15): cut at 16 bytes, 34,306 remain and the
/// automaton holds 4.0 MB instead of 7.2 MB, for 1% more detection
/// instructions on new text and none on a repeated prompt (12 bytes: 2.5 MB
/// but 6% more; 10 bytes: 17% more; `docs/performance.md`, session 15).
const MAX_GATE_LITERAL_LEN: usize = 16;

impl LiteralGate {
    fn new(gated: Vec<(usize, Vec<Vec<u8>>)>) -> Option<Self> {
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut patterns_of: Vec<Vec<PatternID>> = Vec::new();
        for (idx, required) in gated {
            let id = PatternID::new(idx).ok()?;
            let mut required: Vec<Vec<u8>> = required
                .into_iter()
                .map(|mut literal| {
                    literal.truncate(MAX_GATE_LITERAL_LEN);
                    literal
                })
                .collect();
            required.sort_unstable();
            required.dedup();
            for literal in required {
                let slot = *index.entry(literal.clone()).or_insert_with(|| {
                    literals.push(literal);
                    patterns_of.push(Vec::new());
                    patterns_of.len() - 1
                });
                patterns_of.get_mut(slot)?.push(id);
            }
        }
        if literals.is_empty() {
            return None;
        }
        let literals = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&literals)
            .ok()?;
        let mut pattern_starts = Vec::with_capacity(patterns_of.len() + 1);
        let mut pattern_ids = Vec::with_capacity(patterns_of.iter().map(Vec::len).sum());
        pattern_starts.push(0);
        for ids in patterns_of {
            pattern_ids.extend(ids);
            pattern_starts.push(pattern_ids.len());
        }
        Some(Self {
            literals,
            pattern_starts,
            pattern_ids,
        })
    }

    /// The patterns that require literal `literal`.
    fn patterns_of(&self, literal: usize) -> &[PatternID] {
        let start = self.pattern_starts.get(literal).copied().unwrap_or(0);
        let end = self
            .pattern_starts
            .get(literal + 1)
            .copied()
            .unwrap_or(start);
        self.pattern_ids.get(start..end).unwrap_or_default()
    }

    /// Adds the patterns whose literal occurs in `text` to `out`.
    fn candidates(&self, text: &str, out: &mut PatternSet) {
        let folded = fold_text_to_ascii(text);
        let text = folded.as_deref().unwrap_or(text);
        let mut last = None;
        for m in self.literals.find_overlapping_iter(text) {
            if last == Some(m.pattern()) {
                continue;
            }
            last = Some(m.pattern());
            for id in self.patterns_of(m.pattern().as_usize()) {
                out.insert(*id);
            }
        }
    }
}

/// Which patterns of a set match: what `regex::RegexSet::matches` computes,
/// with the engines its meta regex uses for that search (a forward lazy DFA,
/// and the PikeVM when the lazy DFA gives up, e.g. on a Unicode word
/// boundary in non-ASCII text), configured the same way, but without the
/// reverse NFA and the engines that only serve match positions, and without
/// a literal prefilter: the sets that got one were the two-pattern sets of
/// patterns with gaps, whose many case-folded prefixes made Aho-Corasick
/// DFAs of 0.1-0.75 MB each (9.3 MB of the 41 MB compiled policy) that saved
/// nothing on new text and 4% of the instructions on a repeated prompt
/// (`docs/performance.md`, session 15).
struct SetEngine {
    engines: Arc<Engines>,
    pool: Pool<SetCache, CacheFn>,
    len: usize,
}

type CacheFn = Box<dyn Fn() -> SetCache + Send + Sync + UnwindSafe + RefUnwindSafe>;

struct Engines {
    pikevm: PikeVM,
    hybrid: Option<hybrid::dfa::DFA>,
}

struct SetCache {
    pikevm: thompson::pikevm::Cache,
    hybrid: Option<hybrid::dfa::Cache>,
}

impl std::fmt::Debug for SetEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetEngine")
            .field("patterns", &self.len)
            .field("lazy_dfa", &self.engines.hybrid.is_some())
            .finish()
    }
}

impl SetEngine {
    fn from_hirs(hirs: &[Hir]) -> Result<Self, PatternSetError> {
        let err = |e: &dyn std::fmt::Display| PatternSetError(e.to_string());
        let kind = MatchKind::All;
        let nfa: NFA = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(Some(SET_SIZE_LIMIT))
                    .shrink(false)
                    .which_captures(WhichCaptures::None),
            )
            .build_many_from_hir(hirs)
            .map_err(|e| err(&e))?;
        let pikevm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(kind))
            .build_from_nfa(nfa.clone())
            .map_err(|e| err(&e))?;
        // As the meta regex configures its lazy DFA; building fails only if
        // the cache capacity cannot hold a few states, and then the PikeVM
        // does all the work.
        let hybrid = hybrid::dfa::Builder::new()
            .configure(
                hybrid::dfa::Config::new()
                    .match_kind(kind)
                    .starts_for_each_pattern(true)
                    .byte_classes(true)
                    .unicode_word_boundary(true)
                    .cache_capacity(DFA_CACHE_CAPACITY)
                    .skip_cache_capacity_check(false)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa)
            .ok();
        let engines = Arc::new(Engines { pikevm, hybrid });
        let create: CacheFn = {
            let engines = Arc::clone(&engines);
            Box::new(move || SetCache {
                pikevm: engines.pikevm.create_cache(),
                hybrid: engines.hybrid.as_ref().map(|d| d.create_cache()),
            })
        };
        Ok(Self {
            engines,
            pool: Pool::new(create),
            len: hirs.len(),
        })
    }

    /// Whether any pattern of the set matches `text` (the search stops at
    /// the first match).
    fn is_match(&self, text: &str) -> bool {
        let input = Input::new(text).earliest(true);
        let mut cache = self.pool.get();
        if let (Some(dfa), Some(dfa_cache)) = (&self.engines.hybrid, cache.hybrid.as_mut())
            && let Ok(found) = dfa.try_search_fwd(dfa_cache, &input)
        {
            return found.is_some();
        }
        self.engines.pikevm.is_match(&mut cache.pikevm, input)
    }

    fn which_match(&self, text: &str) -> PatternSet {
        let mut matched = PatternSet::new(self.len);
        let input = Input::new(text);
        let mut cache = self.pool.get();
        if let (Some(dfa), Some(dfa_cache)) = (&self.engines.hybrid, cache.hybrid.as_mut())
            && dfa
                .try_which_overlapping_matches(dfa_cache, &input, &mut matched)
                .is_ok()
        {
            return matched;
        }
        self.engines
            .pikevm
            .which_overlapping_matches(&mut cache.pikevm, &input, &mut matched);
        matched
    }
}

/// Parses `patterns` with the options `regex::RegexSetBuilder` uses (syntax
/// defaults and the case sensitivity).
fn parse_all(patterns: &[String], case_insensitive: bool) -> Result<Vec<Hir>, PatternSetError> {
    syntax::parse_many_with(patterns, &syntax_config(case_insensitive))
        .map_err(|e| PatternSetError(e.to_string()))
}

/// The one syntax configuration every parse of a policy pattern uses (the
/// check at load, the sets, the position regexes), so a pattern that passed
/// [`check_pattern`] means the same everywhere it is compiled.
fn syntax_config(case_insensitive: bool) -> syntax::Config {
    syntax::Config::new().case_insensitive(case_insensitive)
}

/// Patterns per set for patterns with a gap (see [`has_gap`]). A lazy DFA
/// over several patterns tracks their NFA states together, and on text it
/// has not seen (every new prompt) it builds a new DFA state at most bytes;
/// the states of a union multiply where the patterns' own states would only
/// add up. A gap such as `[^.]{0,40}` after a common word ("I") keeps a
/// counter running at every position, so patterns with gaps get sets of
/// two. Measured on the default policy of session 13 (`docs/performance.md`,
/// `examples/detect_times.rs`, 1,500 new benign prompts): every pattern in
/// sets of 16 took 5.7-6.4 s, sets of 4 4.1-4.5 s, sets of 2 3.7-3.9 s.
/// With long gaps opened ([`with_open_gaps`], session 28) sets of 2 still
/// did best: sets of 4 took 5.16 s against 4.27-4.53 s, sets of 8 5.7-6.1 s
/// (word gaps such as `(?:[^ ]+ ){0,6}` and short ones stay counted).
const GAP_SET_CHUNK: usize = 2;

/// Patterns per set for patterns without a gap (words, alternations of
/// words, short optional parts). Fewer sets mean fewer scans of a text, but
/// on new text each scan builds lazy-DFA states, and a union of long word
/// lists (the person lists of several languages with an optional word
/// before the noun) builds many more than its parts would. Measured on the
/// session-20 policy (callgrind, `examples/detect_times`, 300 new prompts):
/// sets of 16 2.52 G instructions after a 600-prompt warm-up and 7.96 G
/// cold, sets of 8 2.35 G and 7.33 G, sets of 4 2.25 G and 6.67 G; a
/// repeated 1.3 KB prompt 1.64, 1.71 and 1.79 G. Idle RSS did not grow
/// (sets of 4: 59 MB against 61 MB), nor did the peak over 1,500 new
/// prompts (463 MB against 483 MB). New text is what a server sees.
const PLAIN_SET_CHUNK: usize = 4;

/// Splits the set-searched patterns into the groups searched as one set:
/// patterns with a gap in sets of [`GAP_SET_CHUNK`], the others in sets of
/// [`PLAIN_SET_CHUNK`], each in pattern order. Which patterns match does not
/// depend on the grouping (every engine is exact); only the cost does.
///
/// Each entry is a pattern index, its parsed pattern (which decides its set
/// size) and whatever the caller keeps beside it.
fn group_by_cost<T>(patterns: Vec<(usize, Hir, T)>) -> Vec<Vec<(usize, Hir, T)>> {
    let (gapped, plain): (Vec<_>, Vec<_>) =
        patterns.into_iter().partition(|(_, hir, _)| has_gap(hir));
    let mut groups = Vec::new();
    for (list, size) in [(plain, PLAIN_SET_CHUNK), (gapped, GAP_SET_CHUNK)] {
        let mut list = list.into_iter().peekable();
        while list.peek().is_some() {
            groups.push(list.by_ref().take(size).collect());
        }
    }
    groups
}

/// Whether `hir` can match no text at all (an empty class somewhere every
/// match must pass through): what the ASCII form of a pattern that needs
/// another script becomes. `Properties::minimum_len` cannot say it: an
/// alternation with one such branch reports no minimum either.
fn matches_nothing(hir: &Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class.ranges().is_empty(),
        HirKind::Class(Class::Bytes(class)) => class.ranges().is_empty(),
        HirKind::Repetition(rep) => rep.min > 0 && matches_nothing(&rep.sub),
        HirKind::Capture(cap) => matches_nothing(&cap.sub),
        HirKind::Concat(subs) => subs.iter().any(matches_nothing),
        HirKind::Alternation(subs) => subs.iter().all(matches_nothing),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Look(_) => false,
    }
}

/// Whether `hir` repeats (more than once) something that can match both a
/// space and a letter: a gap that spans words, such as `[^.]{0,40}` or
/// `(?:[^ ]+ ){0,3}`. `[a-z]*` or `\s*` are not gaps: each stays inside one
/// word or one run of spaces.
fn has_gap(hir: &Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Repetition(rep) => {
            let repeats = rep.max.is_none_or(|max| max > 1);
            (repeats && matches_space_and_letter(&rep.sub)) || has_gap(&rep.sub)
        }
        HirKind::Capture(cap) => has_gap(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(has_gap),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => false,
    }
}

/// Whether some string `hir` matches contains a space and some string it
/// matches contains an ASCII letter (not necessarily the same string: an
/// over-estimate is only a smaller set).
fn matches_space_and_letter(hir: &Hir) -> bool {
    fn walk(hir: &Hir, space: &mut bool, letter: &mut bool) {
        use regex_syntax::hir::{Class, HirKind};
        match hir.kind() {
            HirKind::Literal(lit) => {
                *space |= lit.0.contains(&b' ');
                *letter |= lit.0.iter().any(u8::is_ascii_alphabetic);
            }
            HirKind::Class(Class::Unicode(class)) => mark_ascii(space, letter, |b| {
                let c = char::from(b);
                class
                    .ranges()
                    .iter()
                    .any(|r| r.start() <= c && c <= r.end())
            }),
            HirKind::Class(Class::Bytes(class)) => mark_ascii(space, letter, |b| {
                class
                    .ranges()
                    .iter()
                    .any(|r| r.start() <= b && b <= r.end())
            }),
            HirKind::Repetition(rep) => walk(&rep.sub, space, letter),
            HirKind::Capture(cap) => walk(&cap.sub, space, letter),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => {
                subs.iter().for_each(|sub| walk(sub, space, letter))
            }
            HirKind::Empty | HirKind::Look(_) => {}
        }
    }
    /// Marks whether a class (asked through `has`, byte by ASCII byte) holds a space and a letter.
    fn mark_ascii(space: &mut bool, letter: &mut bool, has: impl Fn(u8) -> bool) {
        *space |= has(b' ');
        *letter |= (b'a'..=b'z').chain(b'A'..=b'Z').any(has);
    }
    let (mut space, mut letter) = (false, false);
    walk(hir, &mut space, &mut letter);
    space && letter
}

/// Capacity of each set's lazy DFA cache (one per thread searching at
/// once). The default policy has about 80 sets, so this bounds most of the
/// memory a server grows to on varied traffic: 16 MB let 9,000 new prompts
/// grow one thread to 733 MB, 4 MB to 675 MB at the same CPU time (2 MB
/// cost 20% more: caches cleared too often). See docs/performance.md.
const DFA_CACHE_CAPACITY: usize = 4 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_regexes_report_positions() {
        let m = PatternMatcher::new(
            vec![(r"\bsk-[a-z0-9]{8,}".into(), 3), (r"never".into(), 4)],
            false,
        )
        .unwrap();
        let mut hits = Vec::new();
        m.scan("key sk-abcdef123 and sk-zzzzzzzzz", 10, |h| hits.push(h));
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.signal == 3));
        assert_eq!(hits[0].start, 4);
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(check_pattern("(unclosed", false).is_err());
        assert!(check_pattern("x{1000}{1000}{1000}", false).is_err());
        assert!(PatternMatcher::new(vec![("(x".into(), 0)], false).is_err());
    }

    #[test]
    fn case_insensitive_option() {
        let m = PatternMatcher::new(vec![("Ignore".into(), 0)], true).unwrap();
        let mut n = 0;
        m.scan("ignore", 10, |_| n += 1);
        assert_eq!(n, 1);
    }

    /// What the matcher reported before: a `regex::RegexSet` for which, and
    /// each `regex::Regex` for positions.
    fn reference(patterns: &[(&str, u32)], ci: bool, text: &str) -> Vec<PatternHit> {
        let set = regex::RegexSetBuilder::new(patterns.iter().map(|(p, _)| *p))
            .case_insensitive(ci)
            .build()
            .unwrap();
        let mut out = Vec::new();
        for idx in set.matches(text).iter() {
            let re = regex::RegexBuilder::new(patterns[idx].0)
                .case_insensitive(ci)
                .build()
                .unwrap();
            for m in re.find_iter(text).take(10) {
                out.push(PatternHit {
                    signal: patterns[idx].1,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        out
    }

    /// The matcher of a table of `(pattern, signal)` rows.
    fn matcher(patterns: &[(&str, u32)], ci: bool) -> PatternMatcher {
        let owned = patterns.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        PatternMatcher::new(owned, ci).unwrap()
    }

    fn hits(m: &PatternMatcher, text: &str) -> Vec<PatternHit> {
        let mut out = Vec::new();
        m.scan(text, 10, |h| out.push(h));
        out
    }

    /// Every text gives the reference hits, case-sensitive and not.
    fn assert_reference_spans(patterns: &[(&str, u32)], texts: &[&str]) {
        for ci in [false, true] {
            let m = matcher(patterns, ci);
            for text in texts {
                assert_eq!(
                    hits(&m, text),
                    reference(patterns, ci, text),
                    "{ci} {text:?}"
                );
            }
        }
    }

    /// Patterns that need another script (word lists with no word long
    /// enough to gate on) are set apart: Latin-script texts skip their
    /// sets, the other patterns fill theirs, and every text still gets the
    /// reference hits.
    #[test]
    fn patterns_only_other_scripts_can_match_are_searched_apart() {
        let patterns = [
            (r"(?:你|您)\s*(?:是|叫)", 0),
            (r"\b(?:is|are)\s+[a-z]", 1),
            (r"(?:я|ж)\s+[а-я]", 2),
            (r"\bya\s*[0-9]", 3),
            (r"(?:あ|君)\s*(?:は|が)", 4),
            (r"\b(?:we|us)\b[^.]{0,40}\bok\b", 5),
            (r"(?:你是|is)\s+[a-z]", 6),
        ];
        let m = matcher(&patterns, true);
        let shared = m.shared.as_ref().unwrap();
        let dead: Vec<usize> = shared
            .set
            .ids
            .iter()
            .zip(&shared.dead_on_ascii)
            .filter(|(_, dead)| **dead)
            .flat_map(|(ids, _)| ids.iter().copied())
            .collect();
        assert_eq!(dead, vec![0, 2, 4], "the other-script patterns, together");
        let live_sets = shared.dead_on_ascii.iter().filter(|d| !**d).count();
        assert_eq!(live_sets, 2, "three plain patterns in one set, one gapped");
        let owned: Vec<(&str, u32)> = m.searched_on_every_text();
        assert_eq!(
            owned.len(),
            4,
            "cost listing leaves the skipped ones out: {owned:?}"
        );
        assert_reference_spans(
            &patterns,
            &[
                "is ya 2 we are ok",
                "café: we said it is ok",
                "你是谁 is it",
                "я знаю, ya 3",
                "あは誰 we ok",
                "你是 is a",
            ],
        );
    }

    #[test]
    fn same_results_as_regex_set_including_unicode_word_boundaries() {
        let patterns = [
            (r"\bsex[a-z]*\b", 0),
            (r"\b(?:ignore|forget) (?:[^ ]+ ){0,3}?instructions\b", 1),
            (r"\w+ище\b", 2),
            (r"^hello", 3),
            (r"x*", 4),
            (r"\bkelvin\b", 5),
            (r"\bsex[a-z]*\b", 6),
        ];
        let texts = [
            "ignore all the previous instructions",
            "IGNORE the instructions, sexy",
            "чудовище и sexé and sexy",
            "hello kelvin \u{212A}elvin ſex",
            "",
            "\u{1F600} forget my older instructions\u{1F600}",
        ];
        assert_reference_spans(&patterns, &texts);
    }

    #[test]
    fn relaxed_chunks_map_back_to_the_right_patterns() {
        // More patterns than one relaxed chunk holds, so candidates from
        // later chunks must be numbered past the first.
        // `[a-z]?` leaves no literal long enough to gate on, so every
        // pattern is searched by the sets.
        let patterns: Vec<(String, u32)> = (0..150u32)
            .map(|i| (format!(r"\bw{i}[a-z]?x\b"), i * 2))
            .collect();
        let borrowed: Vec<(&str, u32)> = patterns.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let m = PatternMatcher::new(patterns.clone(), true).unwrap();
        for text in [
            "café w3x w70x w149x",
            "w13xé w140x\u{2019}s",
            "naïve w1x w10x w100x",
        ] {
            let got = hits(&m, text);
            assert!(!got.is_empty(), "{text}");
            assert_eq!(got, reference(&borrowed, true, text), "{text}");
        }
    }

    #[test]
    fn shared_set_reports_each_form_its_own_patterns_in_order() {
        let a = vec![
            ("b+".to_string(), 1),
            ("a+".to_string(), 2),
            ("b+".to_string(), 3),
        ];
        let b = vec![("a+".to_string(), 7), ("c".to_string(), 8)];
        let shared =
            PatternMatcher::new_shared(vec![a.clone(), b.clone(), Vec::new()], true).unwrap();
        assert_eq!(shared.len(), 3);
        assert!(shared[2].is_empty());
        for text in ["ab c", "bbb", "AC", "nothing"] {
            let own_a = PatternMatcher::new(a.clone(), true).unwrap();
            let own_b = PatternMatcher::new(b.clone(), true).unwrap();
            assert_eq!(hits(&shared[0], text), hits(&own_a, text), "{text}");
            assert_eq!(hits(&shared[1], text), hits(&own_b, text), "{text}");
        }
        let both = hits(&shared[0], "ab");
        assert_eq!(
            both.iter().map(|h| h.signal).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(shared[1].patterns(), vec!["a+", "c"]);
    }

    #[test]
    fn a_memo_gives_the_same_hits_and_is_not_reused_for_another_text_or_set() {
        let a = vec![(r"\bb+\b".to_string(), 1), ("a+".to_string(), 2)];
        let b = vec![("a+".to_string(), 7), (r"\bc\b".to_string(), 8)];
        let shared = PatternMatcher::new_shared(vec![a.clone(), b.clone()], true).unwrap();
        let other = PatternMatcher::new(b.clone(), true).unwrap();
        let mut memo = ScanMemos::default();
        let with_memo = |m: &PatternMatcher, text: &str, memo: &mut ScanMemos| {
            let mut out = Vec::new();
            m.scan_with_memo(text, 10, memo, |_| true, |h| out.push(h));
            out
        };
        for text in ["aa bb c", "aa bb c", "é c aaa", "bb", "aa bb c"] {
            for m in [&shared[0], &shared[1], &other, &shared[1]] {
                assert_eq!(with_memo(m, text, &mut memo), hits(m, text), "{text}");
            }
        }
    }

    /// Patterns gated by a required literal (`instructions`, `secret key`,
    /// `kelvin`) and patterns searched as sets (`sex[a-z]*`, `x*`), on
    /// texts built from pieces that make them match, nearly match, or match
    /// only through Unicode case folding (Kelvin sign, long s) or across
    /// non-ASCII word characters, and with the characters a mapped copy
    /// turns into placeholders (accents, curly quotes, dashes, no-break
    /// spaces, emoji) next to a real `_`.
    mod props {
        use super::*;
        use proptest::prelude::*;

        pub(super) const PATTERNS: [(&str, u32); 10] = [
            (r"\b(?:ignore|forget) (?:[^ ]+ ){0,3}?instructions\b", 0),
            (r"\bsecret (?:key|code)s?\b", 1),
            (r"\bkelvin\b", 2),
            (r"\bsex[a-z]*\b", 3),
            (r"(?:reveal|print) the (?:system )?prompt", 4),
            (r"\w+ище\b", 5),
            (r"[0-9]{3}-[0-9]{4}", 6),
            (r"caf[eé]\s+\w+[^a-z]?", 7),
            (r"\bsecret\b.{0,8}?\b(?:key|codes?)\b", 8),
            (r"\b(?:all|x)\b(?: \w{1,4}){0,2}\b", 9),
        ];

        fn piece() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "ignore",
                "forget",
                "instructions",
                "secret",
                "key",
                "codes",
                "kelvin",
                "\u{212A}elvin",
                "\u{17F}ecret",
                "sex",
                "sexé",
                "reveal",
                "print",
                "the",
                "system",
                "prompt",
                "чудовище",
                "é",
                " ",
                " ",
                " ",
                "all",
                "x",
                "555-1234",
                "\u{1F600}",
                "KEY",
                "Instructions",
                "café",
                "\u{2019}",
                "\u{2014}",
                "\u{A0}",
                "_",
            ])
        }

        proptest! {
            #[test]
            fn gated_and_searched_patterns_report_what_regex_set_does(
                pieces in prop::collection::vec(piece(), 0..14),
                ci in any::<bool>(),
            ) {
                let text: String = pieces.concat();
                let m = matcher(&PATTERNS, ci);
                prop_assert_eq!(hits(&m, &text), reference(&PATTERNS, ci, &text));
            }
        }
    }

    /// Gated and set-searched patterns with Unicode word boundaries and
    /// bounded gaps on accented text (mapped checks, mapped copies): every
    /// match, in order, up to the limit, as `regex` finds them, including
    /// matches whose boundary touches an accented letter and near misses
    /// the mapped forms accept.
    #[test]
    fn word_boundaries_next_to_accents_give_the_reference_spans_up_to_the_limit() {
        let patterns = [
            (r"\bsecret\b.{0,8}?\b(?:key|codes?)\b", 0),
            (r"\b(?:all|x)\b(?: \w{1,4}){0,2}\b", 1),
        ];
        let texts = [
            "é secret key, then secretkey and secret é key; x é all of it",
            "secreté key — secret  codes é allé x y z",
            "ésecret key x",
        ];
        for ci in [false, true] {
            let m = matcher(&patterns, ci);
            for text in texts {
                assert_eq!(hits(&m, text), reference(&patterns, ci, text), "{text}");
                let mut limited = Vec::new();
                m.scan(text, 1, |hit| limited.push(hit));
                let first = reference(&patterns, ci, text).into_iter().fold(
                    Vec::<PatternHit>::new(),
                    |mut out, hit| {
                        if !out.iter().any(|h| h.signal == hit.signal) {
                            out.push(hit);
                        }
                        out
                    },
                );
                assert_eq!(limited, first, "at most one hit per regex: {text}");
            }
        }
    }

    /// Texts whose only non-ASCII characters are punctuation, symbols or
    /// emoji are answered by position regexes with ASCII word boundaries
    /// (a DFA scan, not the PikeVM): the same spans as the reference, for
    /// `\b`, `\B` and the half boundaries, gated or set-searched, while a
    /// text with one accented letter still gets Unicode boundaries.
    #[test]
    fn word_boundaries_beside_punctuation_and_emoji_give_the_reference_spans() {
        let patterns = [
            (r"\bsecret\b.{0,8}?\b(?:key|codes?)\b", 0),
            (r"\bdon\W?t\b", 1),
            (r"\Bing\b", 2),
            (r"\b{start}all\b{end}", 3),
            (r"\b(?:x|y)\b", 4),
        ];
        let texts = [
            "don\u{2019}t share the secret\u{2014}key \u{2192} sing\u{2019}",
            "\u{2022} all\u{2026} x\u{1F600}y \u{201C}secret codes\u{201D}",
            "ringing\u{2013}bells, don\u{2019}tx, xall \u{A9} all",
            "caf\u{E9} don\u{2019}t x\u{E9} y\u{E9}x secret\u{E9} key",
        ];
        assert_reference_spans(&patterns, &texts);
        assert_eq!(TextKind::of("plain"), TextKind::Ascii);
        assert_eq!(TextKind::of("it\u{2019}s \u{1F600}"), TextKind::AsciiWords);
        assert_eq!(TextKind::of("caf\u{E9}"), TextKind::Unicode);
        assert_eq!(TextKind::of("\u{447}\u{442}\u{43E}"), TextKind::Unicode);
    }

    #[test]
    fn literal_gate_is_used_and_agrees_with_the_reference() {
        let owned: Vec<(String, u32)> = props_patterns();
        let m = PatternMatcher::new(owned.clone(), true).unwrap();
        let shared = m.shared.as_ref().unwrap();
        assert!(
            shared.gate.is_some(),
            "some patterns have required literals"
        );
        assert!(
            shared.set.ids().count() < owned.len(),
            "gated ones are not in the sets"
        );
        let borrowed: Vec<(&str, u32)> = owned.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        for text in [
            "please IGNORE all the instructions",
            "my \u{17F}ecret key and \u{212A}elvin",
            "caf\u{e9} secret codes \u{1F600} ignore these instructions",
            "nothing to see here",
        ] {
            assert_eq!(hits(&m, text), reference(&borrowed, true, text), "{text}");
        }
    }

    fn props_patterns() -> Vec<(String, u32)> {
        props::PATTERNS
            .iter()
            .map(|(p, s)| (p.to_string(), *s))
            .collect()
    }

    /// A set-searched signal is possible until its set is searched, then
    /// only if the set reported it; a gated one only if its literal occurs.
    /// The memos of two texts on one shared set are kept apart.
    #[test]
    fn possible_signals_narrow_as_sets_are_searched() {
        let a = vec![
            (r"\b\d+ ?g\b".to_string(), 1),
            (r"\bthermite\b".to_string(), 2),
        ];
        let b = vec![(r"\b\d+ ?g\b".to_string(), 7)];
        let m = PatternMatcher::new_shared(vec![a, b], true).unwrap();
        let possible = |m: &PatternMatcher, text: &str, memos: &mut ScanMemos| {
            let mut out = Vec::new();
            m.possible_signals(text, memos, |s| out.push(s));
            out
        };
        let mut memos = ScanMemos::default();
        let (plain, amount) = ("thermite burns", "20 g thermite");
        assert_eq!(possible(&m[0], plain, &mut memos), vec![1, 2]);
        assert_eq!(possible(&m[1], amount, &mut memos), vec![7]);
        assert!(
            m[0].search_next_set(plain, &mut memos, |s| s == 1)
                .is_some()
        );
        assert!(
            m[0].search_next_set(plain, &mut memos, |_| true).is_none(),
            "all searched"
        );
        assert_eq!(possible(&m[0], plain, &mut memos), vec![2], "no amount");
        assert_eq!(
            possible(&m[1], amount, &mut memos),
            vec![7],
            "other text: not searched"
        );
        assert!(
            m[1].search_next_set(amount, &mut memos, |s| s != 7)
                .is_none(),
            "not needed"
        );
        assert!(m[1].search_next_set(amount, &mut memos, |_| true).is_some());
        assert_eq!(possible(&m[1], amount, &mut memos), vec![7]);
        assert_eq!(possible(&m[0], amount, &mut memos), vec![1, 2]);
    }

    /// A walk with a cursor searches each set once, skips what `needed`
    /// rejects for good, and ends with the cursor past every entry.
    #[test]
    fn a_resumed_walk_searches_each_needed_set_once() {
        // Patterns with gaps: one set of two each, so four sets.
        let patterns: Vec<(String, u32)> = (0..8u32)
            .map(|i| (format!(r"\bw{i}\b[^.]{{0,9}}\bz\b"), i))
            .collect();
        let m = PatternMatcher::new(patterns, true).unwrap();
        let text = "w1 and z";
        let mut memos = ScanMemos::default();
        let mut cursor = 0;
        let mut searched = 0;
        while m
            .search_next_set_from(text, &mut memos, &mut cursor, |s| s < 6)
            .is_some()
        {
            searched += 1;
        }
        assert_eq!(searched, 3, "the set of signals 6 and 7 is not needed");
        assert_eq!(cursor, 8);
        assert!(
            m.search_next_set(text, &mut memos, |_| true).is_some(),
            "a fresh walk still finds the set it skipped"
        );
    }

    /// Patterns whose repetition spans words get small sets; words,
    /// alternations and in-word or in-space repetitions do not.
    #[test]
    fn gaps_are_repetitions_that_span_words() {
        let cases = [
            (r"\bi\b[^.]{0,40}\bwant to\b", true),
            (r"\bhow (?:[^ ]+ ){0,3}?bomb\b", true),
            (r"ignore.*instructions", true),
            (r"a.{2,5}b", true),
            (r"\bfilter[a-z]*\b", false),
            (r"\bsystem\s*prompt\b", false),
            (r"\b(?:kill|murder)(?:ing|ed)?\b", false),
            (r"\bpick (?:all|any) (?:that|which) apply\b", false),
            (r"[a-z]{3,15} ?=", false),
            (r"x[ a]?y", false),
        ];
        for (pattern, gap) in cases {
            let hir = parse_all(&[pattern.to_string()], true).unwrap().remove(0);
            assert_eq!(has_gap(&hir), gap, "{pattern}");
        }
    }

    /// Counting the marks of `possible_signals` once and subtracting what
    /// each search rules out gives, after every search, what
    /// `possible_signals` marks when asked again: for both forms of a
    /// shared set, on equal texts (one memo) and on different ones, with
    /// patterns listed twice and sets that report some of their patterns.
    #[test]
    fn ruled_out_keeps_counts_equal_to_possible_signals() {
        // 40 patterns without a required literal: three sets (16, 16, 8).
        let mut a: Vec<(String, u32)> = (0..40u32)
            .map(|i| (format!(r"\bw{i}[a-z]?x\b"), i % 7))
            .collect();
        a.push((r"\bthermite\b".to_string(), 3));
        let b: Vec<(String, u32)> = (0..40u32)
            .step_by(3)
            .map(|i| (format!(r"\bw{i}[a-z]?x\b"), 10 + i % 5))
            .collect();
        let m = PatternMatcher::new_shared(vec![a, b], true).unwrap();
        let count = |texts: [&str; 2], memos: &mut ScanMemos| {
            let mut counts = vec![0i64; 16];
            for (form, text) in m.iter().zip(texts) {
                form.possible_signals(text, memos, |s| counts[s as usize] += 1);
            }
            counts
        };
        for texts in [
            ["w1x w3ax w38x thermite", "w1x w3ax w38x thermite"],
            ["w1x w3ax w38x thermite", "w2x w9x caf\u{e9} w39x"],
            ["nothing here", "w0x"],
        ] {
            let mut memos = ScanMemos::default();
            let mut counts = count(texts, &mut memos);
            for step in 0.. {
                let needed = |s: u32| (s + step).is_multiple_of(2) || step > 3;
                let searched = m
                    .iter()
                    .zip(texts)
                    .find_map(|(form, text)| form.search_next_set(text, &mut memos, needed));
                let Some(searched) = searched else { break };
                for (form, text) in m.iter().zip(texts) {
                    form.ruled_out(text, &memos, searched, |s| counts[s as usize] -= 1);
                }
                assert_eq!(counts, count(texts, &mut memos), "{texts:?} step {step}");
            }
        }
    }

    #[test]
    fn warm_from_compiles_what_the_previous_matcher_used() {
        let patterns = vec![
            ("alpha".to_string(), 0),
            ("beta".to_string(), 1),
            (r"gamma\d".to_string(), 2),
        ];
        let old = PatternMatcher::new(patterns.clone(), true).unwrap();
        let new = PatternMatcher::new(patterns, true).unwrap();
        assert_eq!(new.warm_from(&old), 0);
        assert_eq!(hits(&old, "beta").len(), 1);
        assert_eq!(
            new.warm_from(&old),
            2,
            "the mapped check and the ASCII regex"
        );
        assert_eq!(new.warm_from(&old), 0, "already compiled");
        let compiled = |m: &PatternMatcher| {
            m.shared.as_ref().map(|s| {
                let count = |r: &[OnceLock<Option<meta::Regex>>]| {
                    r.iter().filter(|r| r.get().is_some()).count()
                };
                let checks = s.mapped_checks.iter().filter(|c| c.get().is_some()).count();
                (checks, count(&s.ascii_regexes), count(&s.regexes))
            })
        };
        assert_eq!(
            compiled(&new),
            Some((1, 1, 0)),
            "ASCII text: the ASCII regex"
        );
        assert_eq!(hits(&old, "gamma ray").len(), 0);
        assert_eq!(new.warm_from(&old), 1, "a check that ruled its text out");
        assert_eq!(compiled(&new), Some((2, 1, 0)), "and no position regex");
        assert_eq!(hits(&old, "beta café").len(), 1);
        assert_eq!(new.warm_from(&old), 1, "then the exact one");
        assert_eq!(compiled(&new), Some((2, 1, 1)));
    }

    #[test]
    fn ascii_and_non_ascii_texts_find_the_same_spans() {
        // The ASCII-restricted regexes answer ASCII texts; the exact ones the
        // others. A pattern that needs a non-ASCII letter matches only there.
        let patterns = vec![
            (r"\bcaf[eé]\b".to_string(), 0),
            (r"[^.]{0,10}ing\b".to_string(), 1),
            (r"stra(?:ss|ß)e".to_string(), 2),
        ];
        let m = PatternMatcher::new(patterns, true).unwrap();
        let spans = |t: &str| {
            let mut out: Vec<(u32, usize, usize)> = hits(&m, t)
                .iter()
                .map(|h| (h.signal, h.start, h.end))
                .collect();
            out.sort_unstable();
            out
        };
        assert_eq!(spans("CAFE singing"), vec![(0, 0, 4), (1, 0, 12)]);
        assert_eq!(spans("café singing"), vec![(0, 0, 5), (1, 0, 13)]);
        assert_eq!(spans("Hauptstraße"), vec![(2, 5, 12)]);
        assert_eq!(spans("Hauptstrasse"), vec![(2, 5, 12)]);
    }

    #[test]
    fn warm_from_builds_the_relaxed_sets_if_the_previous_matcher_had() {
        // No literal of 4 bytes: searched as a set, so the relaxed sets are
        // built for the first non-ASCII text that has no mapped copy (a
        // word in another script).
        let patterns = vec![(r"\bal[a-z]?ha\b".to_string(), 0)];
        let old = PatternMatcher::new(patterns.clone(), true).unwrap();
        let relaxed_built =
            |m: &PatternMatcher| m.shared.as_ref().is_some_and(|s| s.relaxed.get().is_some());
        let cold = PatternMatcher::new(patterns.clone(), true).unwrap();
        cold.warm_from(&old);
        assert!(!relaxed_built(&cold), "the old one saw only ASCII so far");
        assert_eq!(hits(&old, "alpha café").len(), 1);
        assert!(
            !relaxed_built(&old),
            "a Latin-script text is searched mapped"
        );
        assert_eq!(hits(&old, "alpha кафе").len(), 1);
        assert!(relaxed_built(&old));
        let new = PatternMatcher::new(patterns, true).unwrap();
        new.warm_from(&old);
        assert!(relaxed_built(&new));
        assert_eq!(hits(&new, "alpha кафе"), hits(&old, "alpha кафе"));
    }
}
