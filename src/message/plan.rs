//! Parse plans: the fields one bitmap announces in one spec, compiled into a
//! few steps. A run of fixed-size fields is one step: one bounds check for
//! the run, one transcoding loop, its slots copied from a template, its class
//! checks merged in advance. Traffic repeats a handful of bitmaps (each
//! message type has its own few), so each spec keeps a small cache of plans
//! keyed by bitmap; a bitmap that finds no room reads field by field, with
//! the same rules.

use std::fmt;
use std::sync::OnceLock;

use super::bitmap::Bitmap;
use super::ebcdic;
use super::iso_message::{Slot, Source};
use super::layout::{FieldLayout, Inner};
use super::spec::{Class, Encoding};

/// Fixed-size fields that follow one another on the wire, read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// How the run is read.
    pub kind: BlockKind,
    /// Bytes of the run on the wire.
    pub wire: u32,
    /// Bytes of the run's values (in the frame or the transcoding buffer).
    pub values: u32,
    /// The run's slots in `Plan::slots`, starts relative to the run's values.
    pub slots: (u16, u16),
    /// The run's class checks in `Plan::checks`, relative likewise.
    pub checks: (u16, u16),
    /// An EBCDIC run's transcoder masks in `Plan::lanes`.
    pub lanes: (u32, u32),
}

/// How a block's values are obtained from its wire bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// ASCII or binary: the values are the wire bytes, left in the frame.
    Frame,
    /// EBCDIC text, transcoded byte for byte.
    Ebcdic,
    /// Packed BCD numbers of even digit counts: two digits per byte.
    Bcd,
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Block(Block),
    /// A field read on its own: length-prefixed, odd-length BCD, hex text,
    /// track data or signed amounts in BCD. Its layout comes along, so that
    /// reading it does not wait on a look-up in the spec's table.
    Field(u16, FieldLayout),
}

/// A class check over `start..end` of a block's values. Adjacent values of
/// one class share a check, as the field-by-field pass merges them (never
/// `x+n`, whose first byte is its sign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    pub class: Class,
    pub start: u32,
    pub end: u32,
}

/// The compiled reading of one bitmap in one spec.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The data elements present (bitmap bits 1 and 65 excluded).
    pub present: Bitmap,
    pub steps: Box<[Step]>,
    /// Slot templates of the blocks' fields.
    pub slots: Box<[Slot]>,
    pub checks: Box<[Check]>,
    /// The EBCDIC blocks' `keep` masks (`ebcdic::to_latin1_block`): the
    /// transcoder's proofs cover the lanes of each block's `an` and `n`
    /// checks, so that a block of mixed classes needs no scan either.
    pub lanes: Box<[u64]>,
}

/// How a fixed-size field joins a block, if it can.
fn block_kind(layout: &FieldLayout) -> Option<BlockKind> {
    // A structured value is walked on its own (`parse::check_inner`).
    if layout.is_variable() || layout.inner != Inner::Unchecked {
        return None;
    }
    match layout.encoding {
        Encoding::Ascii | Encoding::Binary => Some(BlockKind::Frame),
        Encoding::Ebcdic => Some(BlockKind::Ebcdic),
        Encoding::Bcd if layout.class == Class::N && layout.units.is_multiple_of(2) => {
            Some(BlockKind::Bcd)
        }
        Encoding::Bcd | Encoding::Hex => None,
    }
}

/// What a field's class check needs: `None` for values never scanned
/// (binary data, BCD digits, which the decoder admits only as digits).
fn scanned_class(layout: &FieldLayout, kind: BlockKind) -> Option<Class> {
    (layout.scan && kind != BlockKind::Bcd).then_some(layout.class)
}

impl Plan {
    /// The plan for `present` in the spec whose field table is `layouts`;
    /// `None` if the bitmap names a field the spec does not define (such a
    /// message is refused, and refusals are not worth a plan).
    pub(crate) fn compile(layouts: &[FieldLayout], present: Bitmap) -> Option<Plan> {
        let mut steps: Vec<Step> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut checks: Vec<Check> = Vec::new();
        let mut lanes: Vec<u64> = Vec::new();
        let mut open: Option<Block> = None;
        // A block is done: its masks, if it is EBCDIC, then its step.
        let mut close = |open: &mut Option<Block>, steps: &mut Vec<Step>, checks: &[Check]| {
            let Some(mut block) = open.take() else {
                return;
            };
            if block.kind == BlockKind::Ebcdic {
                let ours = &checks[usize::from(block.checks.0)..usize::from(block.checks.1)];
                let covered = |class: Class, at: usize| {
                    ours.iter().any(|c| {
                        c.class == class && (c.start as usize..c.end as usize).contains(&at)
                    })
                };
                let start = lanes.len();
                lanes.extend(ebcdic::lanes_kept(
                    block.values as usize,
                    |at| covered(Class::An, at),
                    |at| covered(Class::N, at),
                ));
                block.lanes = (wide(start), wide(lanes.len()));
            }
            steps.push(Step::Block(block));
        };
        for n in present.iter() {
            let layout = layouts.get(usize::from(n)).filter(|l| l.defined)?;
            let Some(kind) = block_kind(layout) else {
                close(&mut open, &mut steps, &checks);
                steps.push(Step::Field(n, *layout));
                continue;
            };
            let block = match open {
                Some(b) if b.kind == kind => b,
                _ => {
                    close(&mut open, &mut steps, &checks);
                    Block {
                        kind,
                        wire: 0,
                        values: 0,
                        slots: (index(slots.len()), index(slots.len())),
                        checks: (index(checks.len()), index(checks.len())),
                        lanes: (0, 0),
                    }
                }
            };
            let len = layout.value_len;
            let source = if kind == BlockKind::Frame {
                Source::Frame
            } else {
                Source::Decoded
            };
            let start = block.values;
            slots.push(Slot::parsed(n, source, start as usize, len as usize));
            if let Some(class) = scanned_class(layout, kind) {
                let end = start + len;
                let block_has_checks = checks.len() > usize::from(block.checks.0);
                match checks.last_mut() {
                    Some(last)
                        if block_has_checks
                            && last.class == class
                            && last.end == start
                            && class != Class::Xn =>
                    {
                        last.end = end;
                    }
                    _ => checks.push(Check { class, start, end }),
                }
            }
            open = Some(Block {
                wire: block.wire + layout.fixed_wire_bytes,
                values: start + len,
                slots: (block.slots.0, index(slots.len())),
                checks: (block.checks.0, index(checks.len())),
                ..block
            });
        }
        close(&mut open, &mut steps, &checks);
        Some(Plan {
            present,
            steps: steps.into(),
            slots: slots.into(),
            checks: checks.into(),
            lanes: lanes.into(),
        })
    }

    /// The slot templates of `block`.
    #[inline]
    pub(crate) fn slots_of(&self, block: &Block) -> Option<&[Slot]> {
        self.slots
            .get(usize::from(block.slots.0)..usize::from(block.slots.1))
    }

    /// The class checks of `block`.
    #[inline]
    pub(crate) fn checks_of(&self, block: &Block) -> Option<&[Check]> {
        self.checks
            .get(usize::from(block.checks.0)..usize::from(block.checks.1))
    }

    /// The transcoder masks of an EBCDIC `block`.
    #[inline]
    pub(crate) fn lanes_of(&self, block: &Block) -> Option<&[u64]> {
        self.lanes
            .get(block.lanes.0 as usize..block.lanes.1 as usize)
    }
}

/// Counts in a plan are bounded by the 192 fields of a bitmap.
fn index(n: usize) -> u16 {
    debug_assert!(n <= 192);
    n as u16
}

/// Masks are bounded by a step per 16 bytes of 192 fields of at most
/// 9,999 bytes (the spec loader's limit), plus one per block.
fn wide(n: usize) -> u32 {
    debug_assert!(n <= 192 * 9_999 / 16 + 192);
    n as u32
}

/// Plans a cache holds at most: more than the bitmaps a link sees in practice.
pub(crate) const PLANS_MAX: usize = 64;

/// Plans by bitmap, filled on first use and never evicted: a plan is
/// a few hundred bytes, and a full cache only sends further bitmaps down
/// the field-by-field path.
pub(crate) struct PlanCache {
    entries: Box<[OnceLock<Plan>]>,
}

impl Default for PlanCache {
    fn default() -> PlanCache {
        PlanCache {
            entries: (0..PLANS_MAX).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.entries.iter().filter(|e| e.get().is_some()).count();
        write!(f, "PlanCache({held} of {PLANS_MAX})")
    }
}

/// Where a bitmap's plan is looked for first (the next entry is the second
/// choice).
fn home(present: &Bitmap) -> usize {
    let mixed = present.word(0) ^ present.word(1).rotate_left(21) ^ present.word(2).rotate_left(42);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % PLANS_MAX
}

impl PlanCache {
    /// The plan for `present`, if one is cached.
    #[inline]
    pub(crate) fn get(&self, present: &Bitmap) -> Option<&Plan> {
        let at = home(present);
        [at, (at + 1) % PLANS_MAX]
            .into_iter()
            .filter_map(|i| self.entries.get(i)?.get())
            .find(|plan| plan.present == *present)
    }

    /// Caches `plan` in the first free entry of its two; a plan with no
    /// room is dropped.
    pub(crate) fn insert(&self, plan: Plan) {
        let at = home(&plan.present);
        let mut plan = Some(plan);
        for i in [at, (at + 1) % PLANS_MAX] {
            let (Some(entry), Some(p)) = (self.entries.get(i), plan.take()) else {
                return;
            };
            // `set` hands the plan back when the entry is taken (possibly
            // by the same bitmap, from another thread: then either is fine).
            plan = entry.set(p).err();
        }
    }

    /// Plans held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.get().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Spec;

    /// A block's class checks as (class, start, end).
    fn checks(plan: &Plan, block: &Block) -> Vec<(Class, u32, u32)> {
        plan.checks_of(block)
            .expect("the block's checks")
            .iter()
            .map(|c| (c.class, c.start, c.end))
            .collect()
    }

    fn bitmap(fields: &[u16]) -> Bitmap {
        let mut b = Bitmap::default();
        for &n in fields {
            b.set(n);
        }
        b
    }

    #[test]
    fn fixed_fields_in_a_row_are_one_block_with_merged_checks() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let present = bitmap(&[2, 3, 4, 7, 11, 35, 37, 41, 42, 49]);
        let plan = Plan::compile(&spec.layouts, present).expect("plan");
        let kinds: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Block(b) => format!("{:?}:{}", b.kind, b.wire),
                Step::Field(n, _) => format!("{n}"),
            })
            .collect();
        // 3, 4, 7, 11: 6 + 12 + 10 + 6 digits; 37, 41, 42, 49: 12 + 8 + 15 + 3.
        assert_eq!(kinds, ["2", "Frame:34", "35", "Frame:38"]);
        let Step::Block(first) = plan.steps[1] else {
            panic!("a block")
        };
        assert_eq!(
            first.checks.1 - first.checks.0,
            1,
            "four n values, one check"
        );
        let Step::Block(last) = plan.steps[3] else {
            panic!("a block")
        };
        // 37 an, 41 + 42 ans (merged), 49 an.
        assert_eq!(
            checks(&plan, &last),
            [
                (Class::An, 0, 12),
                (Class::Ans, 12, 35),
                (Class::An, 35, 38)
            ]
        );
        assert_eq!(plan.slots.len(), 8);
    }

    #[test]
    fn odd_bcd_and_undefined_fields() {
        let spec = Spec::resolve("iso87-binary").expect("spec");
        let plan = Plan::compile(&spec.layouts, bitmap(&[3, 4, 22, 25])).expect("plan");
        let shape: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Block(b) => format!("{:?}:{}:{}", b.kind, b.wire, b.values),
                Step::Field(n, _) => format!("{n}"),
            })
            .collect();
        // DE22 has 3 digits: read alone, between two BCD blocks.
        assert_eq!(shape, ["Bcd:9:18", "22", "Bcd:1:2"]);
        let undefined = (2..=192u16).find(|&n| !spec.layouts[usize::from(n)].defined);
        if let Some(n) = undefined {
            assert!(Plan::compile(&spec.layouts, bitmap(&[3, n])).is_none());
        }
    }

    #[test]
    fn an_ebcdic_block_keeps_the_lanes_of_its_n_and_an_checks() {
        let spec = Spec::resolve("mastercard-ipm").expect("spec");
        // 3 (n6), 4 (n12), 22 (an12), 23 (n3): one EBCDIC block of 33 bytes.
        let plan = Plan::compile(&spec.layouts, bitmap(&[3, 4, 22, 23])).expect("plan");
        let [Step::Block(block)] = *plan.steps else {
            panic!("one block: {:?}", plan.steps)
        };
        assert_eq!((block.kind, block.values), (BlockKind::Ebcdic, 33));
        assert_eq!(
            checks(&plan, &block),
            [(Class::N, 0, 18), (Class::An, 18, 30), (Class::N, 30, 33)]
        );
        // Steps at 0, 16 and 17 (the last ends with the block).
        let lanes = plan.lanes_of(&block).expect("lanes");
        let bits = |mask: u64, shift: u32| {
            (0..16)
                .filter(|lane| mask >> (shift + lane) & 1 == 1)
                .collect::<Vec<u32>>()
        };
        assert_eq!(lanes.len(), 3);
        assert_eq!(bits(lanes[0], 16), (0..16).collect::<Vec<_>>());
        assert_eq!(bits(lanes[0], 0), Vec::<u32>::new());
        assert_eq!(bits(lanes[1], 16), [0, 1, 14, 15]);
        assert_eq!(bits(lanes[1], 0), (2..14).collect::<Vec<_>>());
        assert_eq!(bits(lanes[2], 0), (1..13).collect::<Vec<_>>());
        assert_eq!(bits(lanes[2], 16), [0, 13, 14, 15]);
        assert!(lanes.iter().all(|&m| m >> 32 == 1), "printability: all");
    }

    #[test]
    fn the_cache_keeps_what_fits_and_finds_it_again() {
        let spec = Spec::resolve("iso87-ascii").expect("spec");
        let cache = PlanCache::default();
        let bitmaps: Vec<Bitmap> = (0..200u16)
            .map(|i| bitmap(&[3, 4 + (i % 60), 100 + (i % 3)]))
            .collect();
        for b in &bitmaps {
            if let Some(plan) = Plan::compile(&spec.layouts, *b) {
                cache.insert(plan);
            }
        }
        assert!(cache.len() <= PLANS_MAX);
        assert!(cache.len() > PLANS_MAX / 2, "{:?}", cache);
        for b in &bitmaps {
            if let Some(plan) = cache.get(b) {
                assert_eq!(plan.present, *b, "a plan is found for its own bitmap only");
            }
        }
    }
}
