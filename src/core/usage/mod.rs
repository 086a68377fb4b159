//! Per-VM-day usage aggregates: the one summary of samples that the evaluation, the annual
//! review and the dashboard's charts read, so none of them reads raw samples by the million.
//!
//! A [`DayAggregate`] holds, for one VM and one Asia/Shanghai day: per resource the count,
//! exact sum, minimum, maximum, latest sample and an exact histogram at the stored resolution
//! (hundredths, [`histogram`]); the network rates' counts, sums and maxima; and per hour the
//! sums and maxima the charts draw. Everything in it is exact and mergeable: the aggregate of a
//! day's samples equals the merge of the aggregates of any split of them ([`DayAggregate::merge`]),
//! which is how today's aggregate is kept current as samples arrive.
//!
//! `window` evaluates the rules over a window of days, some as aggregates and some (the window's
//! partial edge days, days with unfolded samples) as raw samples, and gives exactly the
//! findings of the raw-sample evaluator (`rules::evaluate::evaluate_vm`); `block` is the
//! compressed form of a day's raw samples.
//!
//! Architecture Invariant: pure; the store reads and writes the bytes.

pub mod block;
pub mod histogram;
pub mod idle;
pub mod varint;
pub mod window;

use chrono::NaiveDate;

use crate::core::domain::Resource;
use crate::core::samples::{Hundredths, Sample, shanghai_day_start};
use histogram::{Histogram, HistogramView, Malformed};

/// The encoding's version, the first byte of every stored aggregate.
const FORMAT: u8 = 1;

/// One resource over (part of) a day, in hundredths of a point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceDay {
    pub count: u32,
    pub sum: u64,
    pub min: u16,
    pub max: u16,
    /// The latest sample's instant and value.
    pub latest_ts: i64,
    pub latest: u16,
    pub hist: Histogram,
}

impl ResourceDay {
    fn of(values: &[(i64, u16)]) -> ResourceDay {
        let Some(&(latest_ts, latest)) = values.iter().max_by_key(|&&(ts, _)| ts) else {
            return ResourceDay::default();
        };
        ResourceDay {
            count: values.len() as u32,
            sum: values.iter().map(|&(_, v)| u64::from(v)).sum(),
            min: values.iter().map(|&(_, v)| v).min().unwrap_or(0),
            max: values.iter().map(|&(_, v)| v).max().unwrap_or(0),
            latest_ts,
            latest,
            hist: Histogram::of(values.iter().map(|&(_, v)| v)),
        }
    }

    fn merge(&mut self, other: &ResourceDay) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.latest_ts > self.latest_ts {
            (self.latest_ts, self.latest) = (other.latest_ts, other.latest);
        }
        self.hist.merge(&other.hist);
    }

    /// The mean as a percentage; `None` without samples.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / f64::from(self.count) / 100.0)
    }
}

/// A network figure over a day: how many samples carried it, their sum and maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateDay {
    pub count: u32,
    pub sum: u64,
    pub max: u64,
}

impl RateDay {
    fn add(&mut self, v: Option<u64>) {
        if let Some(v) = v {
            self.count += 1;
            self.sum = self.sum.saturating_add(v);
            self.max = self.max.max(v);
        }
    }

    fn merge(&mut self, other: &RateDay) {
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// The mean; `None` when no sample carried the figure.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / f64::from(self.count))
    }
}

/// One hour of a day (Asia/Shanghai), for the charts: sums and maxima in hundredths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourSummary {
    /// 0..=23.
    pub hour: u8,
    pub samples: u32,
    pub cpu_sum: u64,
    pub cpu_max: u16,
    pub mem_sum: u64,
    pub mem_max: u16,
    pub disk_samples: u32,
    pub disk_sum: u64,
    pub disk_max: u16,
}

impl HourSummary {
    fn add(&mut self, s: &Sample) {
        self.samples += 1;
        self.cpu_sum += u64::from(s.cpu.get());
        self.cpu_max = self.cpu_max.max(s.cpu.get());
        self.mem_sum += u64::from(s.mem.get());
        self.mem_max = self.mem_max.max(s.mem.get());
        if let Some(d) = s.disk {
            self.disk_samples += 1;
            self.disk_sum += u64::from(d.get());
            self.disk_max = self.disk_max.max(d.get());
        }
    }

    /// Adds another hour's (or bucket's) sums and maxima.
    pub fn merge(&mut self, o: &HourSummary) {
        self.samples += o.samples;
        self.cpu_sum += o.cpu_sum;
        self.cpu_max = self.cpu_max.max(o.cpu_max);
        self.mem_sum += o.mem_sum;
        self.mem_max = self.mem_max.max(o.mem_max);
        self.disk_samples += o.disk_samples;
        self.disk_sum += o.disk_sum;
        self.disk_max = self.disk_max.max(o.disk_max);
    }
}

/// One VM's day (or the part of it seen so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayAggregate {
    pub day: NaiveDate,
    /// Samples (every sample has CPU and memory).
    pub samples: u32,
    pub first_ts: i64,
    pub last_ts: i64,
    pub cpu: ResourceDay,
    pub mem: ResourceDay,
    /// Only the samples that reported a disk.
    pub disk: ResourceDay,
    pub rx: RateDay,
    pub tx: RateDay,
    pub inbound: RateDay,
    /// The hours with samples, in order.
    pub hours: Vec<HourSummary>,
}

impl DayAggregate {
    /// The aggregate of `samples`, all of one Asia/Shanghai `day` (any order; callers pass
    /// each instant once). `None` for no samples.
    pub fn of(day: NaiveDate, samples: &[Sample]) -> Option<DayAggregate> {
        let first_ts = samples.iter().map(|s| s.ts).min()?;
        let last_ts = samples.iter().map(|s| s.ts).max()?;
        let series = |f: &dyn Fn(&Sample) -> Option<Hundredths>| -> Vec<(i64, u16)> {
            samples
                .iter()
                .filter_map(|s| f(s).map(|v| (s.ts, v.get())))
                .collect()
        };
        let (mut rx, mut tx, mut inbound) =
            (RateDay::default(), RateDay::default(), RateDay::default());
        let mut hours = [HourSummary::default(); 24];
        let start = shanghai_day_start(day);
        for s in samples {
            rx.add(s.net_rx_bps);
            tx.add(s.net_tx_bps);
            inbound.add(s.inbound_connections.map(u64::from));
            let hour = ((s.ts - start).div_euclid(3600)).clamp(0, 23) as usize;
            hours[hour].add(s);
        }
        Some(DayAggregate {
            day,
            samples: samples.len() as u32,
            first_ts,
            last_ts,
            cpu: ResourceDay::of(&series(&|s| Some(s.cpu))),
            mem: ResourceDay::of(&series(&|s| Some(s.mem))),
            disk: ResourceDay::of(&series(&|s| s.disk)),
            rx,
            tx,
            inbound,
            hours: hours
                .iter()
                .enumerate()
                .filter(|(_, h)| h.samples > 0)
                .map(|(i, h)| HourSummary {
                    hour: i as u8,
                    ..*h
                })
                .collect(),
        })
    }

    /// Adds the aggregate of other samples of the same day (none of the same instant).
    pub fn merge(&mut self, other: &DayAggregate) {
        self.samples += other.samples;
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        self.cpu.merge(&other.cpu);
        self.mem.merge(&other.mem);
        self.disk.merge(&other.disk);
        self.rx.merge(&other.rx);
        self.tx.merge(&other.tx);
        self.inbound.merge(&other.inbound);
        let mut hours = [HourSummary::default(); 24];
        for h in self.hours.iter().chain(&other.hours) {
            let slot = &mut hours[usize::from(h.hour.min(23))];
            slot.merge(h);
        }
        self.hours = hours
            .iter()
            .enumerate()
            .filter(|(_, h)| h.samples > 0)
            .map(|(i, h)| HourSummary {
                hour: i as u8,
                ..*h
            })
            .collect();
    }

    pub fn resource(&self, resource: Resource) -> &ResourceDay {
        match resource {
            Resource::Cpu => &self.cpu,
            Resource::Memory => &self.mem,
            Resource::Disk => &self.disk,
        }
    }

    /// The stored form: a version byte, then varints (see `Reader` for the order).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        let put = |out: &mut Vec<u8>, v: u64| varint::put(out, v);
        put(&mut out, u64::from(self.samples));
        put(&mut out, self.first_ts.max(0) as u64);
        put(&mut out, (self.last_ts - self.first_ts).max(0) as u64);
        for r in [&self.cpu, &self.mem, &self.disk] {
            put(&mut out, u64::from(r.count));
            if r.count == 0 {
                continue;
            }
            put(&mut out, r.sum);
            put(&mut out, u64::from(r.min));
            put(&mut out, u64::from(r.max));
            put(&mut out, (r.latest_ts - self.first_ts).max(0) as u64);
            put(&mut out, u64::from(r.latest));
            let hist = r.hist.encode();
            put(&mut out, hist.len() as u64);
            out.extend_from_slice(&hist);
        }
        for r in [&self.rx, &self.tx, &self.inbound] {
            put(&mut out, u64::from(r.count));
            if r.count > 0 {
                put(&mut out, r.sum);
                put(&mut out, r.max);
            }
        }
        put(&mut out, self.hours.len() as u64);
        for h in &self.hours {
            put(&mut out, u64::from(h.hour));
            put(&mut out, u64::from(h.samples));
            put(&mut out, h.cpu_sum);
            put(&mut out, u64::from(h.cpu_max));
            put(&mut out, h.mem_sum);
            put(&mut out, u64::from(h.mem_max));
            put(&mut out, u64::from(h.disk_samples));
            if h.disk_samples > 0 {
                put(&mut out, h.disk_sum);
                put(&mut out, u64::from(h.disk_max));
            }
        }
        out
    }

    /// Reads the stored form back in full (histograms decoded).
    pub fn decode(day: NaiveDate, bytes: &[u8]) -> Result<DayAggregate, Malformed> {
        let view = DayView::parse(day, bytes)?;
        view.to_owned()
    }
}

/// One resource of a stored day, its histogram left encoded until needed.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDayView<'a> {
    pub count: u32,
    pub sum: u64,
    pub min: u16,
    pub max: u16,
    pub latest_ts: i64,
    pub latest: u16,
    pub hist: &'a [u8],
}

impl ResourceDayView<'_> {
    pub fn histogram(&self) -> Result<HistogramView<'_>, Malformed> {
        HistogramView::parse(self.hist)
    }
}

/// A stored day read in place: the figures parsed, the histograms not yet.
#[derive(Debug, Clone)]
pub struct DayView<'a> {
    pub day: NaiveDate,
    pub samples: u32,
    pub first_ts: i64,
    pub last_ts: i64,
    pub cpu: ResourceDayView<'a>,
    pub mem: ResourceDayView<'a>,
    pub disk: ResourceDayView<'a>,
    pub rx: RateDay,
    pub tx: RateDay,
    pub inbound: RateDay,
    pub hours: Vec<HourSummary>,
}

impl<'a> DayView<'a> {
    pub fn parse(day: NaiveDate, bytes: &'a [u8]) -> Result<DayView<'a>, Malformed> {
        let mut r = Reader { bytes, at: 0 };
        if r.byte()? != FORMAT {
            return Err(Malformed("unknown aggregate format"));
        }
        let samples = r.u32()?;
        let first_ts = r.i64()?;
        let last_ts = first_ts + r.i64()?;
        let resource = |r: &mut Reader<'a>| -> Result<ResourceDayView<'a>, Malformed> {
            let count = r.u32()?;
            if count == 0 {
                return Ok(ResourceDayView {
                    count,
                    sum: 0,
                    min: 0,
                    max: 0,
                    latest_ts: 0,
                    latest: 0,
                    hist: &[],
                });
            }
            Ok(ResourceDayView {
                count,
                sum: r.u64()?,
                min: r.u16()?,
                max: r.u16()?,
                latest_ts: first_ts + r.i64()?,
                latest: r.u16()?,
                hist: {
                    let len = r.u64()? as usize;
                    r.take(len)?
                },
            })
        };
        let cpu = resource(&mut r)?;
        let mem = resource(&mut r)?;
        let disk = resource(&mut r)?;
        let rate = |r: &mut Reader<'a>| -> Result<RateDay, Malformed> {
            let count = r.u32()?;
            if count == 0 {
                return Ok(RateDay::default());
            }
            Ok(RateDay {
                count,
                sum: r.u64()?,
                max: r.u64()?,
            })
        };
        let rx = rate(&mut r)?;
        let tx = rate(&mut r)?;
        let inbound = rate(&mut r)?;
        let n = r.u64()?;
        if n > 24 {
            return Err(Malformed("more than 24 hours"));
        }
        let mut hours = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let hour = r.u16()?;
            if hour > 23 {
                return Err(Malformed("hour above 23"));
            }
            let samples = r.u32()?;
            let (cpu_sum, cpu_max, mem_sum, mem_max) = (r.u64()?, r.u16()?, r.u64()?, r.u16()?);
            let disk_samples = r.u32()?;
            let (disk_sum, disk_max) = if disk_samples > 0 {
                (r.u64()?, r.u16()?)
            } else {
                (0, 0)
            };
            hours.push(HourSummary {
                hour: hour as u8,
                samples,
                cpu_sum,
                cpu_max,
                mem_sum,
                mem_max,
                disk_samples,
                disk_sum,
                disk_max,
            });
        }
        if r.at != bytes.len() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(DayView {
            day,
            samples,
            first_ts,
            last_ts,
            cpu,
            mem,
            disk,
            rx,
            tx,
            inbound,
            hours,
        })
    }

    pub fn resource(&self, resource: Resource) -> &ResourceDayView<'a> {
        match resource {
            Resource::Cpu => &self.cpu,
            Resource::Memory => &self.mem,
            Resource::Disk => &self.disk,
        }
    }

    /// The whole aggregate, histograms decoded.
    pub fn to_owned(&self) -> Result<DayAggregate, Malformed> {
        let resource = |v: &ResourceDayView<'_>| -> Result<ResourceDay, Malformed> {
            Ok(ResourceDay {
                count: v.count,
                sum: v.sum,
                min: v.min,
                max: v.max,
                latest_ts: v.latest_ts,
                latest: v.latest,
                hist: if v.count == 0 {
                    Histogram::default()
                } else {
                    v.histogram()?.decode()?
                },
            })
        };
        Ok(DayAggregate {
            day: self.day,
            samples: self.samples,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            cpu: resource(&self.cpu)?,
            mem: resource(&self.mem)?,
            disk: resource(&self.disk)?,
            rx: self.rx,
            tx: self.tx,
            inbound: self.inbound,
            hours: self.hours.clone(),
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self.bytes.get(self.at).ok_or(Malformed("truncated"))?;
        self.at += 1;
        Ok(b)
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        varint::get(self.bytes, &mut self.at).ok_or(Malformed("truncated"))
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        u32::try_from(self.u64()?).map_err(|_| Malformed("count too large"))
    }
    fn u16(&mut self) -> Result<u16, Malformed> {
        u16::try_from(self.u64()?).map_err(|_| Malformed("value too large"))
    }
    fn i64(&mut self) -> Result<i64, Malformed> {
        i64::try_from(self.u64()?).map_err(|_| Malformed("instant too large"))
    }
    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(len).ok_or(Malformed("length"))?;
        let out = self.bytes.get(self.at..end).ok_or(Malformed("truncated"))?;
        self.at = end;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
