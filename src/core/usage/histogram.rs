//! Exact histograms of percentages at the stored resolution (hundredths), encoded so that a
//! window's percentile reads a fixed amount per day whatever the sample rate.
//!
//! The encoding has two levels. A coarse index lists each non-empty 1-point bucket (`[b, b+1)`,
//! and bucket 100 for exactly 100.00) with its count and the byte length of its segment; the
//! segments follow, each holding the exact hundredths of its bucket and their counts. Finding
//! the nearest-rank percentile of a window adds up the coarse counts (at most 101 per day),
//! picks the bucket that holds the rank, and decodes only that bucket's segment of each day:
//! at most 100 distinct values per day, however many samples the day had.
//!
//! A segment is `n` (distinct values, 1..=100), then either the `n` offsets in the bucket (one
//! byte each, when `n <= 12`) or a 100-bit bitmap of them, then one 2-bit code per value (count
//! 1, 2 or 3; 3 means "4 or more", its count minus 4 following as a varint after the codes).

use super::varint;

/// Buckets are whole percentage points, 0..=100.
pub const BUCKETS: usize = 101;
/// The most offsets a segment lists one byte each before a bitmap is smaller.
const LISTED_MAX: usize = 12;
const BITMAP_BYTES: usize = 13;

/// An exact histogram: (value in hundredths, count), values strictly increasing, counts > 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(Vec<(u16, u32)>);

impl Histogram {
    /// The histogram of some values (any order).
    pub fn of(values: impl IntoIterator<Item = u16>) -> Histogram {
        let mut values: Vec<u16> = values.into_iter().collect();
        values.sort_unstable();
        let mut out: Vec<(u16, u32)> = Vec::new();
        for v in values {
            match out.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => out.push((v, 1)),
            }
        }
        Histogram(out)
    }

    pub fn entries(&self) -> &[(u16, u32)] {
        &self.0
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(va, na)), Some(&&(vb, nb))) => {
                    if va == vb {
                        out.push((va, na + nb));
                        a.next();
                        b.next();
                    } else if va < vb {
                        out.push((va, na));
                        a.next();
                    } else {
                        out.push((vb, nb));
                        b.next();
                    }
                }
                (Some(&&e), None) => {
                    out.push(e);
                    a.next();
                }
                (None, Some(&&e)) => {
                    out.push(e);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.0 = out;
    }

    /// The nearest-rank percentile, in hundredths; `None` when empty.
    pub fn percentile(&self, p: crate::core::rules::Percentile) -> Option<u16> {
        let rank = p.rank(self.count() as usize) as u64;
        let mut seen = 0;
        self.0
            .iter()
            .find(|&&(_, n)| {
                seen += u64::from(n);
                seen >= rank
            })
            .map(|&(v, _)| v)
    }

    /// The encoded form (see the module's documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut index = Vec::new();
        let mut segments = Vec::new();
        let mut start = 0;
        let mut buckets = 0u64;
        while start < self.0.len() {
            let bucket = bucket_of(self.0[start].0);
            let end = start
                + self.0[start..]
                    .iter()
                    .take_while(|&&(v, _)| bucket_of(v) == bucket)
                    .count();
            let entries = &self.0[start..end];
            let before = segments.len();
            if bucket < 100 {
                encode_segment(entries, bucket, &mut segments);
            }
            let count: u64 = entries.iter().map(|&(_, n)| u64::from(n)).sum();
            index.push(bucket as u8);
            varint::put(&mut index, count);
            varint::put(&mut index, (segments.len() - before) as u64);
            buckets += 1;
            start = end;
        }
        let mut out = Vec::with_capacity(index.len() + segments.len() + 2);
        varint::put(&mut out, buckets);
        out.extend_from_slice(&index);
        out.extend_from_slice(&segments);
        out
    }
}

fn bucket_of(v: u16) -> usize {
    usize::from(v / 100).min(100)
}

fn encode_segment(entries: &[(u16, u32)], bucket: usize, out: &mut Vec<u8>) {
    let n = entries.len();
    out.push(n as u8);
    let offset = |v: u16| (usize::from(v) - bucket * 100) as u8;
    if n <= LISTED_MAX {
        out.extend(entries.iter().map(|&(v, _)| offset(v)));
    } else {
        let mut bitmap = [0u8; BITMAP_BYTES];
        for &(v, _) in entries {
            let o = usize::from(offset(v));
            bitmap[o / 8] |= 1 << (o % 8);
        }
        out.extend_from_slice(&bitmap);
    }
    let mut codes = vec![0u8; n.div_ceil(4)];
    for (i, &(_, count)) in entries.iter().enumerate() {
        let code = count.clamp(1, 4) as u8 - 1;
        codes[i / 4] |= code << ((i % 4) * 2);
    }
    out.extend_from_slice(&codes);
    for &(_, count) in entries.iter().filter(|&&(_, c)| c >= 4) {
        varint::put(out, u64::from(count - 4));
    }
}

/// Counts of every value 0..=10000 at once: adding many days' histograms into it costs one
/// addition per entry (a year of a VM's days, for the annual review).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts(Vec<u64>);

impl Default for Counts {
    fn default() -> Self {
        Counts(vec![0; 10_001])
    }
}

impl Counts {
    pub fn add(&mut self, h: &Histogram) {
        for &(v, n) in &h.0 {
            self.0[usize::from(v).min(10_000)] += u64::from(n);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds an encoded histogram without building it: its segments decode into `scratch`.
    pub fn add_view(
        &mut self,
        h: &HistogramView<'_>,
        scratch: &mut Vec<(u16, u32)>,
    ) -> Result<(), Malformed> {
        for &(b, _, _, _) in &h.index {
            scratch.clear();
            h.bucket(usize::from(b), scratch)?;
            for &(v, n) in scratch.iter() {
                self.0[usize::from(v).min(10_000)] += u64::from(n);
            }
        }
        Ok(())
    }

    /// The nearest-rank percentile, in hundredths; `None` when empty.
    pub fn percentile(&self, p: crate::core::rules::Percentile) -> Option<u16> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = p.rank(total as usize) as u64;
        let mut seen = 0;
        self.0
            .iter()
            .position(|&n| {
                seen += n;
                seen >= rank
            })
            .map(|v| v as u16)
    }
}

/// Why encoded bytes could not be read: they were not written by [`Histogram::encode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed usage histogram: {0}")]
pub struct Malformed(pub &'static str);

/// An encoded histogram, read in place: the coarse index is parsed, segments only on demand.
#[derive(Debug, Clone)]
pub struct HistogramView<'a> {
    /// (bucket, count, segment start, segment end) in bucket order.
    index: Vec<(u8, u64, usize, usize)>,
    bytes: &'a [u8],
}

impl<'a> HistogramView<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<HistogramView<'a>, Malformed> {
        let mut at = 0;
        let buckets = varint::get(bytes, &mut at).ok_or(Malformed("bucket count"))?;
        if buckets > BUCKETS as u64 {
            return Err(Malformed("more than 101 buckets"));
        }
        let mut index = Vec::with_capacity(buckets as usize);
        let mut lengths = Vec::with_capacity(buckets as usize);
        for _ in 0..buckets {
            let bucket = *bytes.get(at).ok_or(Malformed("bucket"))?;
            at += 1;
            if usize::from(bucket) >= BUCKETS {
                return Err(Malformed("bucket above 100"));
            }
            let count = varint::get(bytes, &mut at).ok_or(Malformed("bucket count"))?;
            let len = varint::get(bytes, &mut at).ok_or(Malformed("segment length"))? as usize;
            index.push((bucket, count, 0, 0));
            lengths.push(len);
        }
        for (entry, len) in index.iter_mut().zip(lengths) {
            let end = at.checked_add(len).ok_or(Malformed("segment length"))?;
            if end > bytes.len() {
                return Err(Malformed("segment past the end"));
            }
            entry.2 = at;
            entry.3 = end;
            at = end;
        }
        Ok(HistogramView { index, bytes })
    }

    pub fn count(&self) -> u64 {
        self.index.iter().map(|&(_, n, _, _)| n).sum()
    }

    /// Adds this histogram's coarse counts into `counts`.
    pub fn add_coarse(&self, counts: &mut [u64; BUCKETS]) {
        for &(b, n, _, _) in &self.index {
            counts[usize::from(b)] += n;
        }
    }

    /// Appends the exact (value, count) entries of one bucket to `out`.
    pub fn bucket(&self, bucket: usize, out: &mut Vec<(u16, u32)>) -> Result<(), Malformed> {
        let Some(&(_, count, start, end)) = self
            .index
            .iter()
            .find(|&&(b, _, _, _)| usize::from(b) == bucket)
        else {
            return Ok(());
        };
        if bucket == 100 {
            out.push((
                10_000,
                u32::try_from(count).map_err(|_| Malformed("count"))?,
            ));
            return Ok(());
        }
        decode_segment(&self.bytes[start..end], bucket, out)
    }

    /// The nearest-rank percentile, in hundredths, decoding only the bucket it falls in;
    /// `None` when empty.
    pub fn percentile(&self, p: crate::core::rules::Percentile) -> Result<Option<u16>, Malformed> {
        let total = self.count();
        if total == 0 {
            return Ok(None);
        }
        let rank = p.rank(total as usize) as u64;
        let mut seen = 0;
        for &(b, n, _, _) in &self.index {
            if seen + n >= rank {
                let mut entries = Vec::new();
                self.bucket(usize::from(b), &mut entries)?;
                for (v, c) in entries {
                    seen += u64::from(c);
                    if seen >= rank {
                        return Ok(Some(v));
                    }
                }
                return Err(Malformed("bucket counts disagree with the index"));
            }
            seen += n;
        }
        Err(Malformed("counts below the rank"))
    }

    /// Every entry, in value order.
    pub fn decode(&self) -> Result<Histogram, Malformed> {
        let mut out = Vec::new();
        for &(b, _, _, _) in &self.index {
            self.bucket(usize::from(b), &mut out)?;
        }
        Ok(Histogram(out))
    }
}

fn decode_segment(seg: &[u8], bucket: usize, out: &mut Vec<(u16, u32)>) -> Result<(), Malformed> {
    let n = usize::from(*seg.first().ok_or(Malformed("empty segment"))?);
    if n == 0 || n > 100 {
        return Err(Malformed("segment size"));
    }
    let mut at = 1;
    let base = (bucket * 100) as u16;
    let first = out.len();
    if n <= LISTED_MAX {
        let offsets = seg.get(at..at + n).ok_or(Malformed("offsets"))?;
        if offsets.iter().any(|&o| o >= 100) {
            return Err(Malformed("offset above 99"));
        }
        out.extend(offsets.iter().map(|&o| (base + u16::from(o), 0)));
        at += n;
    } else {
        let bitmap = seg.get(at..at + BITMAP_BYTES).ok_or(Malformed("bitmap"))?;
        for o in 0..100u16 {
            if bitmap[usize::from(o / 8)] & (1 << (o % 8)) != 0 {
                out.push((base + o, 0));
            }
        }
        at += BITMAP_BYTES;
        if out.len() - first != n {
            return Err(Malformed("bitmap size"));
        }
    }
    let codes = seg
        .get(at..at + n.div_ceil(4))
        .ok_or(Malformed("count codes"))?;
    at += n.div_ceil(4);
    for i in 0..n {
        let code = (codes[i / 4] >> ((i % 4) * 2)) & 3;
        let count = if code < 3 {
            u32::from(code) + 1
        } else {
            let extra = varint::get(seg, &mut at).ok_or(Malformed("count"))?;
            u32::try_from(extra + 4).map_err(|_| Malformed("count"))?
        };
        out[first + i].1 = count;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_and_reads_back_buckets_and_counts() {
        let h = Histogram::of([
            0, 5, 5, 99, 100, 2500, 2500, 2500, 2500, 2599, 10_000, 10_000,
        ]);
        assert_eq!(
            h.entries(),
            &[
                (0, 1),
                (5, 2),
                (99, 1),
                (100, 1),
                (2500, 4),
                (2599, 1),
                (10_000, 2)
            ]
        );
        let bytes = h.encode();
        let view = HistogramView::parse(&bytes).expect("parses");
        assert_eq!(view.count(), 12);
        let mut coarse = [0; BUCKETS];
        view.add_coarse(&mut coarse);
        assert_eq!(
            (coarse[0], coarse[1], coarse[25], coarse[100]),
            (4, 1, 5, 2)
        );
        let mut bucket = Vec::new();
        view.bucket(25, &mut bucket).expect("bucket");
        assert_eq!(bucket, [(2500, 4), (2599, 1)]);
        assert_eq!(view.decode().expect("decodes"), h);
    }

    #[test]
    fn a_dense_bucket_uses_the_bitmap_and_stays_small() {
        // A busy minute-by-minute day: 1440 values spread over 30..40%.
        let values = (0..1440u32).map(|i| 3000 + ((i * 7919) % 1000) as u16);
        let h = Histogram::of(values);
        let bytes = h.encode();
        assert!(bytes.len() < 1440, "{} bytes for 1440 samples", bytes.len());
        assert_eq!(
            HistogramView::parse(&bytes)
                .expect("parses")
                .decode()
                .expect("decodes"),
            h
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[][..], &[200][..], &[1, 5, 3, 9][..], &[1, 101, 1, 0][..]] {
            if let Ok(v) = HistogramView::parse(bytes) {
                assert!(v.decode().is_err() || v.count() == 0);
            }
        }
    }

    proptest! {
        #[test]
        fn any_values_round_trip(values in proptest::collection::vec(0u16..=10_000, 0..3000),
                                 more in proptest::collection::vec(0u16..=10_000, 0..300)) {
            let h = Histogram::of(values.iter().copied());
            let bytes = h.encode();
            let view = HistogramView::parse(&bytes).expect("parses");
            prop_assert_eq!(view.count(), values.len() as u64);
            prop_assert_eq!(view.decode().expect("decodes"), h.clone());
            let mut counts = Counts::default();
            counts.add(&h);
            let p95 = crate::core::rules::Percentile::P95;
            prop_assert_eq!(counts.percentile(p95), h.percentile(p95));
            // Read in place, the same counts and the same percentile.
            let mut in_place = Counts::default();
            in_place.add_view(&view, &mut Vec::new()).expect("adds");
            prop_assert_eq!(&in_place, &counts);
            prop_assert_eq!(view.percentile(p95).expect("percentile"), h.percentile(p95));
            let mut merged = h;
            merged.merge(&Histogram::of(more.iter().copied()));
            prop_assert_eq!(merged, Histogram::of(values.into_iter().chain(more)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(view) = HistogramView::parse(&bytes) {
                let _ = view.decode();
            }
        }
    }
}
