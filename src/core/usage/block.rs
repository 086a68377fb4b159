//! A day's raw samples of one VM, compressed column by column with pco (a well-kept numeric
//! codec: delta, binning and entropy coding), so raw samples stay kept, exportable and exact at
//! a few bytes each.
//!
//! Layout: a version byte, the number of samples as a varint, then per column (ts, cpu, mem,
//! disk, net_rx_bps, net_tx_bps, inbound_connections) a presence byte (0: no sample has it,
//! 1: every sample has it, 2: some do; missing ones are a sentinel the column cannot otherwise
//! hold) and, unless absent, the pco bytes with their length.

use pco::ChunkConfig;
use pco::standalone::{simple_compress, simple_decompress};

use super::varint;
use crate::core::samples::{Hundredths, Sample};

const FORMAT: u8 = 1;

/// Why a block could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("sample block: {0}")]
    Malformed(&'static str),
    #[error("sample block codec: {0}")]
    Codec(#[from] pco::errors::PcoError),
}

/// pco's level 4 of 12: nearly the ratio of the default at a fraction of its encoding time,
/// measured on minute samples (BENCHMARKS.md, storage).
fn config() -> ChunkConfig {
    ChunkConfig::default().with_compression_level(4)
}

/// Writes one column: `value` of every sample, a missing one as `sentinel`.
fn put_column<T: pco::data_types::Number>(
    out: &mut Vec<u8>,
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<T>,
    sentinel: T,
) -> Result<(), BlockError> {
    let values: Vec<Option<T>> = samples.iter().map(value).collect();
    let present = values.iter().filter(|v| v.is_some()).count();
    let presence = match present {
        0 => 0u8,
        n if n == values.len() => 1,
        _ => 2,
    };
    out.push(presence);
    if presence == 0 {
        return Ok(());
    }
    let plain: Vec<T> = values.iter().map(|v| v.unwrap_or(sentinel)).collect();
    let bytes = simple_compress(&plain, &config())?;
    varint::put(out, bytes.len() as u64);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Compresses samples (sorted by `ts`, each instant once; the caller guarantees both).
pub fn encode(samples: &[Sample]) -> Result<Vec<u8>, BlockError> {
    if samples.windows(2).any(|w| w[0].ts >= w[1].ts) {
        return Err(BlockError::Malformed(
            "samples not in strictly increasing time order",
        ));
    }
    let mut out = vec![FORMAT];
    varint::put(&mut out, samples.len() as u64);
    if samples.is_empty() {
        return Ok(out);
    }
    put_column(&mut out, samples, |s| Some(s.ts), 0)?;
    put_column(&mut out, samples, |s| Some(s.cpu.get()), 0)?;
    put_column(&mut out, samples, |s| Some(s.mem.get()), 0)?;
    put_column(&mut out, samples, |s| s.disk.map(Hundredths::get), u16::MAX)?;
    put_column(&mut out, samples, |s| s.net_rx_bps, u64::MAX)?;
    put_column(&mut out, samples, |s| s.net_tx_bps, u64::MAX)?;
    put_column(&mut out, samples, |s| s.inbound_connections, u32::MAX)?;
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    n: usize,
}

impl Cursor<'_> {
    fn column<T: pco::data_types::Number + PartialEq>(
        &mut self,
        sentinel: T,
    ) -> Result<Vec<Option<T>>, BlockError> {
        let presence = *self
            .bytes
            .get(self.at)
            .ok_or(BlockError::Malformed("truncated"))?;
        self.at += 1;
        if presence == 0 {
            return Ok(vec![None; self.n]);
        }
        if presence > 2 {
            return Err(BlockError::Malformed("presence"));
        }
        let len =
            varint::get(self.bytes, &mut self.at).ok_or(BlockError::Malformed("length"))? as usize;
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(BlockError::Malformed("truncated column"))?;
        let values: Vec<T> = simple_decompress(&self.bytes[self.at..end])?;
        self.at = end;
        if values.len() != self.n {
            return Err(BlockError::Malformed("column length"));
        }
        Ok(values
            .into_iter()
            .map(|v| (presence == 1 || v != sentinel).then_some(v))
            .collect())
    }

    /// Steps over a column without decoding it.
    fn skip(&mut self) -> Result<(), BlockError> {
        let presence = *self
            .bytes
            .get(self.at)
            .ok_or(BlockError::Malformed("truncated"))?;
        self.at += 1;
        match presence {
            0 => Ok(()),
            1 | 2 => {
                let len = varint::get(self.bytes, &mut self.at)
                    .ok_or(BlockError::Malformed("length"))? as usize;
                self.at = self
                    .at
                    .checked_add(len)
                    .filter(|&e| e <= self.bytes.len())
                    .ok_or(BlockError::Malformed("truncated column"))?;
                Ok(())
            }
            _ => Err(BlockError::Malformed("presence")),
        }
    }
}

/// A cursor at a block's first column, with its sample count (`None` for an empty block).
fn open(bytes: &[u8]) -> Result<Option<Cursor<'_>>, BlockError> {
    if bytes.first() != Some(&FORMAT) {
        return Err(BlockError::Malformed("unknown block format"));
    }
    let mut at = 1;
    let n = varint::get(bytes, &mut at).ok_or(BlockError::Malformed("sample count"))? as usize;
    if n == 0 {
        return Ok(None);
    }
    if n > 10_000_000 {
        return Err(BlockError::Malformed("sample count"));
    }
    Ok(Some(Cursor { bytes, at, n }))
}

/// The instants of a block's samples, in time order: its first column only, so checking for a
/// replayed sample does not decode the rest.
pub fn timestamps(bytes: &[u8]) -> Result<Vec<i64>, BlockError> {
    let Some(mut c) = open(bytes)? else {
        return Ok(Vec::new());
    };
    c.column::<i64>(0)?
        .into_iter()
        .map(|ts| ts.ok_or(BlockError::Malformed("instant")))
        .collect()
}

/// The samples of a block, in time order.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, BlockError> {
    decode_columns(bytes, true)
}

/// The samples of a block without their network figures (left `None`, their columns not
/// decoded): what the rules judge, at about half the decoding (the rates are most of a block).
pub fn decode_usage(bytes: &[u8]) -> Result<Vec<Sample>, BlockError> {
    decode_columns(bytes, false)
}

/// The `i`th value of a column that may not have been decoded.
fn nth<T: Copy>(column: &Option<Vec<Option<T>>>, i: usize) -> Option<T> {
    column.as_ref().and_then(|c| c[i])
}

fn decode_columns(bytes: &[u8], network: bool) -> Result<Vec<Sample>, BlockError> {
    let Some(mut c) = open(bytes)? else {
        return Ok(Vec::new());
    };
    let n = c.n;
    let ts = c.column::<i64>(0)?;
    let cpu = c.column::<u16>(0)?;
    let mem = c.column::<u16>(0)?;
    let disk = c.column::<u16>(u16::MAX)?;
    let (rx, tx, inbound) = if network {
        (
            Some(c.column::<u64>(u64::MAX)?),
            Some(c.column::<u64>(u64::MAX)?),
            Some(c.column::<u32>(u32::MAX)?),
        )
    } else {
        for _ in 0..3 {
            c.skip()?;
        }
        (None, None, None)
    };
    if c.at != bytes.len() {
        return Err(BlockError::Malformed("trailing bytes"));
    }
    let pct = |v: Option<u16>| {
        v.and_then(Hundredths::new)
            .ok_or(BlockError::Malformed("percentage"))
    };
    (0..n)
        .map(|i| {
            Ok(Sample {
                ts: ts[i].ok_or(BlockError::Malformed("instant"))?,
                cpu: pct(cpu[i])?,
                mem: pct(mem[i])?,
                disk: disk[i].map(|d| pct(Some(d))).transpose()?,
                net_rx_bps: nth(&rx, i),
                net_tx_bps: nth(&tx, i),
                inbound_connections: nth(&inbound, i),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(ts: i64, cpu: u16, disk: Option<u16>, rx: Option<u64>) -> Sample {
        Sample {
            ts,
            cpu: Hundredths::new(cpu).expect("pct"),
            mem: Hundredths::new(4200).expect("pct"),
            disk: disk.and_then(Hundredths::new),
            net_rx_bps: rx,
            net_tx_bps: rx.map(|r| r / 2),
            inbound_connections: rx.map(|_| 3),
        }
    }

    #[test]
    fn a_minute_day_is_a_few_bytes_a_sample_and_comes_back_exactly() {
        let day: Vec<Sample> = (0..1440)
            .map(|i| {
                sample(
                    1_758_816_000 + i * 60 + i % 3,
                    1200 + (i * 37 % 500) as u16,
                    Some(5100),
                    Some(800 + (i * 13 % 400) as u64),
                )
            })
            .collect();
        let bytes = encode(&day).expect("encodes");
        assert!(bytes.len() < 1440 * 8, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes).expect("decodes"), day);
        let instants: Vec<i64> = day.iter().map(|s| s.ts).collect();
        assert_eq!(timestamps(&bytes).expect("instants"), instants);
        let usage = decode_usage(&bytes).expect("usage");
        assert_eq!(usage.len(), day.len());
        for (u, s) in usage.iter().zip(&day) {
            assert_eq!((u.ts, u.cpu, u.mem, u.disk), (s.ts, s.cpu, s.mem, s.disk));
            assert_eq!(
                (u.net_rx_bps, u.net_tx_bps, u.inbound_connections),
                (None, None, None)
            );
        }
    }

    #[test]
    fn absent_columns_cost_a_byte_and_stay_absent() {
        let day: Vec<Sample> = (0..10)
            .map(|i| sample(1_000 + i * 60, 100, None, None))
            .collect();
        let bytes = encode(&day).expect("encodes");
        assert_eq!(decode(&bytes).expect("decodes"), day);
        assert!(
            encode(&[day[1], day[0]]).is_err(),
            "out of order is refused"
        );
        assert_eq!(decode(&encode(&[]).expect("empty")).expect("empty"), vec![]);
    }

    proptest! {
        #[test]
        fn any_samples_round_trip(rows in proptest::collection::vec(
            (1u32..300, 0u16..=10_000, proptest::option::of(0u16..=10_000),
             proptest::option::of(0u64..=1_000_000_000_000)), 0..400)) {
            let mut ts = 1_700_000_000i64;
            let day: Vec<Sample> = rows.iter().map(|&(step, cpu, disk, rx)| {
                ts += i64::from(step);
                sample(ts, cpu, disk, rx)
            }).collect();
            let bytes = encode(&day).expect("encodes");
            prop_assert_eq!(timestamps(&bytes).expect("instants"), day.iter().map(|s| s.ts).collect::<Vec<_>>());
            prop_assert_eq!(decode(&bytes).expect("decodes"), day);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let _ = timestamps(&bytes);
            let _ = decode_usage(&bytes);
        }
    }
}
