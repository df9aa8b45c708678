//! Which rules may still fire on a text while its pattern sets are searched
//! one at a time, kept up to date as searches rule patterns out.
//!
//! Recomputing this from scratch after every set search (every rule's
//! [`score::may_fire`], every form's patterns walked) was most of
//! `scan_text`'s own time on prose (`docs/performance.md`, session 11):
//! about twenty searches per text, each followed by a walk over hundreds of
//! patterns and every signal of every rule. A search only ever removes
//! possibilities, and only a rule reading a signal that lost its last
//! possible source can change its answer, so only those rules are asked
//! again.

use super::score;
use crate::detect::normalize::ObfuscationSigns;
use crate::policy::{CompiledPolicy, CompiledRule, SignalSource};

/// The rules that may still fire and the signals they need, given how many
/// sources may still give each signal hits.
pub(crate) struct Liveness<'p> {
    policy: &'p CompiledPolicy,
    reads: &'p dyn Fn(&CompiledRule) -> bool,
    signs: &'p ObfuscationSigns,
    /// Per signal: how many sources may still give it hits (a keyword hit
    /// found counts one; so does each pattern entry of each form not yet
    /// ruled out). Zero: the signal has no hits in this text.
    possible: Vec<u32>,
    /// Per rule of the policy, in order: it reads the text and may fire.
    live: Vec<bool>,
    /// Per signal: how many signals of live rules read its hits.
    needed: Vec<u32>,
    /// The same, counting only the signals of live rules that add to the
    /// score (positive weight or required): a search for their patterns
    /// can drop a rule, one for a mitigating signal's cannot.
    needed_to_fire: Vec<u32>,
    /// The same, counting only required signals: a search that finds none
    /// of their patterns drops the rule at once.
    needed_required: Vec<u32>,
    /// The rules reading each signal's hits: those of signal `s` are
    /// `readers[readers_start[s]..readers_start[s + 1]]`. Built by the
    /// first [`Self::settle`] that has a lost signal to look up: a short
    /// text whose sets rule nothing out never needs it.
    readers_start: Vec<usize>,
    readers: Vec<usize>,
    /// Signals whose last possible source was ruled out since the last
    /// [`Self::settle`].
    lost: Vec<u32>,
}

impl<'p> Liveness<'p> {
    /// Starts from `possible` (per signal, the number of sources that may
    /// give it hits): the rules `reads` accepts that may fire are live.
    pub(crate) fn new(
        policy: &'p CompiledPolicy,
        reads: &'p dyn Fn(&CompiledRule) -> bool,
        signs: &'p ObfuscationSigns,
        possible: Vec<u32>,
    ) -> Self {
        let n = policy.signals.len();
        let mut out = Self {
            policy,
            reads,
            signs,
            possible,
            live: vec![false; policy.rules.len()],
            needed: vec![0; n],
            needed_to_fire: vec![0; n],
            needed_required: vec![0; n],
            readers_start: Vec::new(),
            readers: Vec::new(),
            lost: Vec::new(),
        };
        out.possible.resize(n, 0);
        for (index, rule) in policy.rules.iter().enumerate() {
            if reads(rule) && out.may_fire(rule) {
                out.set_live(index, true);
            }
        }
        out
    }

    /// Fills `readers` and `readers_start` with the rules `reads` accepts,
    /// per signal whose hits they read: counted first, then placed, so the
    /// index is three flat vectors (one per signal would be hundreds of
    /// small allocations per text).
    fn index_readers(&mut self) {
        let (policy, reads) = (self.policy, self.reads);
        let n = policy.signals.len();
        let mut start = vec![0usize; n + 1];
        for rule in policy.rules.iter().filter(|r| reads(r)) {
            Self::for_each_read(policy, rule, |hits_from, _| {
                if let Some(c) = start.get_mut(hits_from as usize + 1) {
                    *c += 1;
                }
            });
        }
        for i in 0..n {
            let before = start.get(i).copied().unwrap_or(0);
            if let Some(c) = start.get_mut(i + 1) {
                *c += before;
            }
        }
        let mut next = start.clone();
        let mut readers = vec![0usize; start.get(n).copied().unwrap_or(0)];
        for (index, rule) in policy.rules.iter().enumerate() {
            if !reads(rule) {
                continue;
            }
            Self::for_each_read(policy, rule, |hits_from, _| {
                if let Some(at) = next.get_mut(hits_from as usize)
                    && let Some(slot) = readers.get_mut(*at)
                {
                    *slot = index;
                    *at += 1;
                }
            });
        }
        self.readers_start = start;
        self.readers = readers;
    }

    /// Whether a live rule reads the hits of `signal` in the way `need`
    /// names ([`Need`]).
    pub(crate) fn is_needed_as(&self, signal: u32, need: Need) -> bool {
        let counts = match need {
            Need::Required => &self.needed_required,
            Need::ToFire => &self.needed_to_fire,
            Need::Any => &self.needed,
        };
        counts.get(signal as usize).is_some_and(|n| *n > 0) && self.frames_may_hit(signal)
    }

    /// For each signal, whether a live rule reads its hits.
    pub(crate) fn needed(&self) -> Vec<bool> {
        self.needed
            .iter()
            .enumerate()
            .map(|(s, n)| *n > 0 && self.frames_may_hit(s as u32))
            .collect()
    }

    /// False when only `near` signals read the hits of `signal` and none of
    /// their frames can have hits: those hits would count nowhere.
    fn frames_may_hit(&self, signal: u32) -> bool {
        match self.policy.near_only_frames.get(signal as usize) {
            Some(Some(frames)) => frames
                .iter()
                .any(|f| self.possible.get(*f as usize).is_some_and(|n| *n > 0)),
            _ => true,
        }
    }

    /// One source that may have given `signal` hits was ruled out. The
    /// rules it affects are asked again at the next [`Self::settle`].
    pub(crate) fn rule_out(&mut self, signal: u32) {
        if let Some(count) = self.possible.get_mut(signal as usize)
            && *count > 0
        {
            *count -= 1;
            if *count == 0 {
                self.lost.push(signal);
            }
        }
    }

    /// Drops the live rules that can no longer fire now that the signals
    /// ruled out since the last call have no hits.
    pub(crate) fn settle(&mut self) {
        if self.readers_start.is_empty() && !self.lost.is_empty() {
            self.index_readers();
        }
        while let Some(signal) = self.lost.pop() {
            let s = signal as usize;
            let (Some(&from), Some(&to)) =
                (self.readers_start.get(s), self.readers_start.get(s + 1))
            else {
                continue;
            };
            for i in from..to {
                let Some(&index) = self.readers.get(i) else {
                    continue;
                };
                let policy = self.policy;
                if self.live.get(index).copied().unwrap_or(false)
                    && let Some(rule) = policy.rules.get(index)
                    && !self.may_fire(rule)
                {
                    self.set_live(index, false);
                }
            }
        }
    }

    /// [`score::may_fire`] with the signals that may still have hits.
    fn may_fire(&self, rule: &CompiledRule) -> bool {
        score::may_fire(self.policy, rule, self.signs, |signal| {
            self.possible.get(signal as usize).is_some_and(|n| *n > 0)
        })
    }

    /// Marks rule `index` live or not and counts its signals' needs.
    fn set_live(&mut self, index: usize, live: bool) {
        let policy = self.policy;
        let (Some(slot), Some(rule)) = (self.live.get_mut(index), policy.rules.get(index)) else {
            return;
        };
        *slot = live;
        let count = |n: &mut u32| {
            if live {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        let (needed, to_fire, required) = (
            &mut self.needed,
            &mut self.needed_to_fire,
            &mut self.needed_required,
        );
        Self::for_each_read(policy, rule, |hits_from, need| {
            let at = hits_from as usize;
            needed.get_mut(at).map(count);
            if need != Need::Any {
                to_fire.get_mut(at).map(count);
            }
            if need == Need::Required {
                required.get_mut(at).map(count);
            }
        });
    }

    /// Calls `f` with each signal whose hits `rule` reads (its match
    /// signals' `hits_from`, and their `near` frames), each with the most a
    /// search for it can tell about the rule. A plain loop: this runs for
    /// every live rule of every text.
    fn for_each_read(policy: &CompiledPolicy, rule: &CompiledRule, mut f: impl FnMut(u32, Need)) {
        for s in &rule.signals {
            let Some(signal) = policy.signal(*s) else {
                continue;
            };
            let SignalSource::Matches {
                hits_from, near, ..
            } = &signal.source
            else {
                continue;
            };
            let need = if signal.required {
                Need::Required
            } else if signal.weight > 0.0 {
                Need::ToFire
            } else {
                Need::Any
            };
            match near {
                None => f(*hits_from, need),
                // A `near` signal has no hits without its frames': they are
                // read the way the signal is, and its own patterns last, so
                // that the frames are searched first and, where none has a
                // hit, the signal's patterns are not searched at all
                // ([`Self::frames_may_hit`]).
                Some(near) => {
                    f(*hits_from, Need::Any);
                    for frame in &near.hits_from {
                        f(*frame, need);
                    }
                }
            }
        }
    }
}

/// How a live rule reads a signal's hits, from the reading a set search
/// can settle soonest to the one it cannot: the engine searches the sets
/// of the first kind before the second and the second before the third,
/// so that rules are dropped before the sets of their mitigating signals
/// are searched for nothing. Each kind includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// A required signal: a search that finds none of its patterns drops
    /// the rule.
    Required,
    /// A signal that adds to the score: a search that finds none can drop
    /// the rule if the rest cannot reach its threshold.
    ToFire,
    /// Any signal, mitigating ones too: their hits change the score of a
    /// rule that may fire, but a search for them never drops one.
    Any,
}

impl Need {
    /// Every kind, in the order the engine searches for them.
    pub(crate) const IN_SEARCH_ORDER: [Need; 3] = [Need::Required, Need::ToFire, Need::Any];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::compile_yaml;
    use crate::policy::{Direction, Role};

    /// What the engine computed after every set search before: every rule
    /// asked again with the signals that may have hits.
    fn needed_from_scratch(
        policy: &CompiledPolicy,
        reads: &dyn Fn(&CompiledRule) -> bool,
        signs: &ObfuscationSigns,
        possible: &[u32],
    ) -> Vec<bool> {
        let mut needed = vec![false; policy.signals.len()];
        let may_have_hits = |s: u32| possible.get(s as usize).is_some_and(|n| *n > 0);
        for rule in policy.rules.iter().filter(|r| reads(r)) {
            if !score::may_fire(policy, rule, signs, may_have_hits) {
                continue;
            }
            for signal in rule.signals.iter().filter_map(|s| policy.signal(*s)) {
                if let SignalSource::Matches {
                    hits_from, near, ..
                } = &signal.source
                {
                    needed[*hits_from as usize] = true;
                    for frame in near.iter().flat_map(|n| &n.hits_from) {
                        needed[*frame as usize] = true;
                    }
                }
            }
        }
        // Hits only `near` signals read are not needed while none of
        // their frames may have any.
        for (s, frames) in policy.near_only_frames.iter().enumerate() {
            if let Some(frames) = frames
                && !frames.iter().any(|f| may_have_hits(*f))
            {
                needed[s] = false;
            }
        }
        needed
    }

    fn policy() -> CompiledPolicy {
        compile_yaml(
            r#"
version: 1
name: liveness
signals:
  lab frame: {keywords: [in the lab]}
rules:
  - id: thermite
    threshold: 3
    signals:
      - {name: amount, regex: ['\b\d+ ?g\b'], required: true}
      - {name: object, regex: ['\bthermite\b'], weight: 2}
      - {name: how, keywords: [how to], weight: 1}
    action: block
  - id: either
    threshold: 1
    signals:
      - {name: a, regex: ['\balpha\b']}
      - {name: b, regex: ['\bbeta\b']}
      - {name: c, keywords: [gamma], weight: -1}
    action: block
  - id: both
    threshold: 2
    signals:
      - {name: a2, regex: ['\balpha\b']}
      - {name: d, regex: ['\bdelta\b']}
    action: block
  - id: near-the-lab
    signals:
      - {name: e, regex: ['\bepsilon\b'], near: {signal: lab frame, within: 20}}
      - {name: z, regex: ['\bzeta\b']}
    action: block
  - id: output-only
    applies_to: output
    signals:
      - {regex: ['\bsecret\b']}
    action: block
"#,
        )
    }

    /// Ruling sources out one at a time, in every order tried, leaves the
    /// same needed signals as recomputing from scratch after each step: no
    /// rule that could still fire is dropped, and none that cannot is kept.
    #[test]
    fn incremental_liveness_matches_a_recomputation_after_every_step() {
        let p = policy();
        let reads = |rule: &CompiledRule| rule.sees(Direction::Input, Role::User);
        let signs = ObfuscationSigns::default();
        let n = p.signals.len() as u32;
        // Two sources per signal, ruled out in orders that differ by stride.
        for stride in [1u32, 3, 5, 7] {
            let possible = vec![2u32; n as usize];
            let mut live = Liveness::new(&p, &reads, &signs, possible.clone());
            let mut reference = possible;
            assert_eq!(
                live.needed(),
                needed_from_scratch(&p, &reads, &signs, &reference)
            );
            for step in 0..2 * n {
                let signal = (step * stride) % n;
                live.rule_out(signal);
                live.settle();
                let r = &mut reference[signal as usize];
                *r = r.saturating_sub(1);
                assert_eq!(
                    live.needed(),
                    needed_from_scratch(&p, &reads, &signs, &reference),
                    "stride {stride} step {step}"
                );
            }
            for signal in (0..n).chain(0..n) {
                live.rule_out(signal);
            }
            live.settle();
            assert!(
                live.needed().iter().all(|n| !n),
                "no hits possible: no rule can fire"
            );
        }
    }

    /// The signal whose hits the match signal named `name` reads.
    fn hits_of_signal(p: &CompiledPolicy, name: &str) -> u32 {
        let signal = p
            .signals
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .expect("signal");
        match signal.source {
            SignalSource::Matches { hits_from, .. } => hits_from,
            _ => panic!("match signal"),
        }
    }

    /// A signal two live rules read stays needed until both are dropped;
    /// a rule that does not read the text never makes a signal needed.
    #[test]
    fn a_shared_signal_stays_needed_while_one_reader_is_live() {
        let p = policy();
        let reads = |rule: &CompiledRule| rule.sees(Direction::Input, Role::User);
        let signs = ObfuscationSigns::default();
        let hits_from = |name: &str| hits_of_signal(&p, name);
        let mut live = Liveness::new(&p, &reads, &signs, vec![1; p.signals.len()]);
        let output_only = p.rules.iter().find(|r| &*r.id == "output-only");
        for signal in output_only.expect("rule").signals.iter() {
            if let Some(SignalSource::Matches { hits_from, .. }) =
                p.signal(*signal).map(|s| &s.source)
            {
                assert!(
                    !live.is_needed_as(*hits_from, Need::Any),
                    "the rule does not read input"
                );
            }
        }
        let alpha = hits_from("a");
        assert!(live.is_needed_as(alpha, Need::Any));
        live.rule_out(hits_from("d"));
        live.settle();
        assert!(
            live.is_needed_as(alpha, Need::Any),
            "`either` still reads alpha"
        );
        live.rule_out(hits_from("b"));
        live.settle();
        assert!(
            live.is_needed_as(alpha, Need::Any),
            "alpha alone can fire `either`"
        );
        live.rule_out(alpha);
        live.settle();
        assert!(
            !live.is_needed_as(alpha, Need::Any),
            "neither rule can fire"
        );
        assert!(!live.is_needed_as(hits_from("b"), Need::Any));
    }

    /// Hits that only a `near` signal reads are not searched for while its
    /// frame cannot have hits: they would count nowhere.
    #[test]
    fn a_near_signals_patterns_wait_for_its_frame() {
        let p = policy();
        let reads = |rule: &CompiledRule| rule.sees(Direction::Input, Role::User);
        let signs = ObfuscationSigns::default();
        let epsilon = hits_of_signal(&p, "e");
        let frame = p
            .signals
            .iter()
            .position(|s| s.name.as_deref() == Some("lab frame"))
            .expect("the frame's own signal") as u32;
        let mut live = Liveness::new(&p, &reads, &signs, vec![1; p.signals.len()]);
        assert!(live.is_needed_as(epsilon, Need::Any));
        assert!(
            !live.is_needed_as(epsilon, Need::ToFire),
            "searched after the frames"
        );
        live.rule_out(frame);
        live.settle();
        assert!(
            live.is_needed_as(hits_of_signal(&p, "z"), Need::ToFire),
            "the rule is still live"
        );
        assert!(!live.is_needed_as(epsilon, Need::Any));
        assert!(!live.needed()[epsilon as usize]);
    }

    /// A required signal is needed in every way, a scoring one to fire and
    /// in general, a mitigating one only in general; a dropped rule needs
    /// none of them.
    #[test]
    fn each_signal_is_needed_as_its_rule_reads_it() {
        let p = policy();
        let reads = |rule: &CompiledRule| rule.sees(Direction::Input, Role::User);
        let signs = ObfuscationSigns::default();
        let hits_from = |name: &str| hits_of_signal(&p, name);
        let mut live = Liveness::new(&p, &reads, &signs, vec![1; p.signals.len()]);
        let kinds = |live: &Liveness<'_>, name: &str| {
            Need::IN_SEARCH_ORDER.map(|need| live.is_needed_as(hits_from(name), need))
        };
        assert_eq!(kinds(&live, "amount"), [true, true, true]);
        assert_eq!(kinds(&live, "object"), [false, true, true]);
        assert_eq!(kinds(&live, "c"), [false, false, true]);
        live.rule_out(hits_from("amount"));
        live.settle();
        assert_eq!(kinds(&live, "object"), [false, false, false]);
        assert_eq!(
            kinds(&live, "c"),
            [false, false, true],
            "`either` is still live"
        );
    }
}
