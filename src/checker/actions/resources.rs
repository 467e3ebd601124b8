//! `expectResources{}`: bounds on what a peer process holds, read from
//! `/proc/<pid>` (the checker spawned it): its open file descriptors and its
//! peak resident memory (`VmHWM`, which the kernel keeps, so one reading is a
//! true peak). With `untilEvent`, descriptors are sampled every `interval`
//! until the peer prints that event, and the most seen at once is checked,
//! so a download that opens a file per target shows up while it runs.

use crate::checker::actions::{DEFAULT_WAIT, peer};
use crate::checker::lab::{Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::units::{Size, Span, human_bytes};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// `{ atMost = n }`: a count bound.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CountBound {
    pub at_most: u64,
}

/// `{ atMost = "64MiB" }`: a size bound.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SizeBound {
    pub at_most: Size,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectResourcesStep {
    pub peer: String,
    /// More peers, sampled alongside `peer` and held to the same bounds
    /// (a source and its receiver during one download).
    #[serde(default)]
    pub also: Vec<String>,
    pub open_files: Option<CountBound>,
    pub rss: Option<SizeBound>,
    /// Sample open files until the peer prints this event (from the step's
    /// start on); without it, one reading.
    pub until_event: Option<String>,
    /// Time between samples (default 2 ms).
    pub interval: Option<Span>,
    /// How long to wait for `untilEvent`.
    pub timeout: Option<Span>,
}

impl StepParams for ExpectResourcesStep {
    fn check(&self) -> Result<(), String> {
        // A step with no bound could never fail.
        if self.open_files.is_none() && self.rss.is_none() {
            return Err("give at least one of `openFiles`, `rss`".into());
        }
        if self.until_event.is_none() && (self.interval.is_some() || self.timeout.is_some()) {
            return Err("`interval` and `timeout` need `untilEvent`".into());
        }
        Ok(())
    }
}

/// What was read from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Most descriptors open at once over the samples.
    pub open_files: u64,
    /// `VmHWM`, in bytes.
    pub peak_rss: u64,
    pub samples: u64,
}

impl Usage {
    fn show(&self) -> String {
        format!(
            "{} open files at most over {} samples, peak RSS {} ({} B)",
            self.open_files,
            self.samples,
            human_bytes(self.peak_rss),
            self.peak_rss
        )
    }
}

/// The descriptors `pid` has open now.
pub fn open_files(pid: i32) -> std::io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// `pid`'s peak resident set (`VmHWM` of `/proc/<pid>/status`), in bytes.
pub fn peak_rss(pid: i32) -> std::io::Result<u64> {
    status_bytes(pid, "VmHWM")
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`, …), in bytes.
pub fn status_bytes(pid: i32, field: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kb(&status, field).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no readable {field}"),
        )
    })
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let mut words = rest.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => n.checked_mul(1024),
        _ => None,
    }
}

/// The first bound `u` breaks, as (expected, seen).
fn broken_bound(s: &ExpectResourcesStep, u: &Usage) -> Option<(String, String)> {
    if let Some(b) = s.open_files
        && u.open_files > b.at_most
    {
        return Some((
            format!("at most {} open files", b.at_most),
            format!("{} open at once", u.open_files),
        ));
    }
    if let Some(b) = s.rss
        && u.peak_rss > b.at_most.0
    {
        return Some((
            format!("peak RSS at most {}", human_bytes(b.at_most.0)),
            format!("{} ({} B)", human_bytes(u.peak_rss), u.peak_rss),
        ));
    }
    None
}

pub fn expect_resources(lab: &mut Lab, s: &ExpectResourcesStep, _cx: &StepCtx) -> StepResult {
    let names: Vec<&str> = std::iter::once(s.peer.as_str())
        .chain(s.also.iter().map(String::as_str))
        .collect();
    let mut watched = Vec::new();
    for name in &names {
        let p = peer(lab, name)?;
        watched.push((*name, p.pid, p.log.clone()));
    }
    let harness = |name: &str, pid: i32, e: std::io::Error| {
        Failure::harness(
            anyhow::Error::new(e).context(format!("reading /proc/{pid} of {name}")),
            &[name],
        )
    };
    // A process that exited mid-sample has no fd folder: that is a failure,
    // never "0 open files".
    let sample = |usage: &mut [Usage]| -> Result<(), Failure> {
        for ((name, pid, _), u) in watched.iter().zip(usage.iter_mut()) {
            let n = open_files(*pid).map_err(|e| harness(name, *pid, e))?;
            u.open_files = u.open_files.max(n);
            u.samples += 1;
        }
        Ok(())
    };
    let mut usage = vec![
        Usage {
            open_files: 0,
            peak_rss: 0,
            samples: 0,
        };
        watched.len()
    ];
    sample(&mut usage)?;
    if let Some(event) = &s.until_event {
        let (name, _, log) = &watched[0];
        let start = log.len();
        let interval = s.interval.map(|i| i.0).unwrap_or(Duration::from_millis(2));
        let deadline = Instant::now() + s.timeout.map(|t| t.0).unwrap_or(DEFAULT_WAIT);
        loop {
            let seen = log.since(start).iter().any(|l| is_event(&l.value, event));
            sample(&mut usage)?;
            if seen {
                break;
            }
            if Instant::now() >= deadline || log.is_closed() {
                return Err(Failure::expect(
                    format!("{name} prints {event} while its resources are sampled"),
                    format!("no {event} ({})", usage[0].show()),
                    &[name],
                ));
            }
            std::thread::sleep(interval);
        }
    }
    for ((name, pid, _), u) in watched.iter().zip(usage.iter_mut()) {
        u.peak_rss = peak_rss(*pid).map_err(|e| harness(name, *pid, e))?;
        println!("      … resources of {name}: {}", u.show());
    }
    for ((name, _, _), u) in watched.iter().zip(&usage) {
        if let Some((expected, seen)) = broken_bound(s, u) {
            return Err(Failure::expect(
                format!("on {name}: {expected}"),
                format!("{seen}; {}", u.show()),
                &[name],
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::registry::Action;
    use crate::checker::script::load_str;
    use std::path::Path;

    fn step(open: Option<u64>, rss: Option<u64>) -> ExpectResourcesStep {
        ExpectResourcesStep {
            peer: "p".into(),
            also: Vec::new(),
            open_files: open.map(|at_most| CountBound { at_most }),
            rss: rss.map(|n| SizeBound { at_most: Size(n) }),
            until_event: None,
            interval: None,
            timeout: None,
        }
    }

    #[test]
    fn bounds_pass_at_the_limit_and_fail_past_it() {
        let u = Usage {
            open_files: 40,
            peak_rss: 30 << 20,
            samples: 3,
        };
        assert!(broken_bound(&step(Some(40), Some(30 << 20)), &u).is_none());
        let (want, seen) = broken_bound(&step(Some(39), None), &u).unwrap_or_default();
        assert!(want.contains("at most 39"), "{want}");
        assert!(seen.contains("40"), "{seen}");
        let (want, _) = broken_bound(&step(None, Some(16 << 20)), &u).unwrap_or_default();
        assert!(want.contains("peak RSS at most 16 MiB"), "{want}");
    }

    /// This test process's own readings: real numbers, and a bound below
    /// them fails.
    #[test]
    fn readings_of_a_live_process_are_real() -> std::io::Result<()> {
        let pid = std::process::id() as i32;
        let files = open_files(pid)?;
        let rss = peak_rss(pid)?;
        assert!(files >= 3, "{files}");
        assert!(rss > 1 << 20, "{rss}");
        let held: Vec<std::fs::File> = (0..20)
            .map(|_| std::fs::File::open("/proc/self/status"))
            .collect::<Result<_, _>>()?;
        assert!(open_files(pid)? >= 20, "20 more files did not show");
        drop(held);
        let u = Usage {
            open_files: files,
            peak_rss: rss,
            samples: 1,
        };
        assert!(broken_bound(&step(Some(1), None), &u).is_some());
        assert!(broken_bound(&step(None, Some(1 << 20)), &u).is_some());
        assert!(
            open_files(i32::MAX).is_err(),
            "a missing process read as 0 files"
        );
        Ok(())
    }

    #[test]
    fn status_fields_are_parsed_in_bytes() {
        let hwm = |s| parse_status_kb(s, "VmHWM");
        assert_eq!(hwm("Name:\tx\nVmHWM:\t  2048 kB\n"), Some(2 << 20));
        assert_eq!(hwm("VmRSS:\t2048 kB\n"), None);
        assert_eq!(hwm("VmHWM:\t2048 MB\n"), None);
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t   41236 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(hwm(status), Some(41236 << 10));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(100 << 10));
        // A field whose name only starts like the one asked for is not it.
        assert_eq!(parse_status_kb("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    fn parse(src: &str) -> Result<Vec<Action>, String> {
        load_str("t.lua", src, Path::new("t.lua"), 0)
            .map(|s| s.steps.into_iter().map(|s| s.action).collect())
            .map_err(|e| e.0)
    }

    #[test]
    fn steps_parse_and_refuse_mistakes() -> Result<(), String> {
        let steps = parse(
            "scenario { expectResources { peer = \"c\", openFiles = { atMost = 256 },\n\
             rss = { atMost = \"64MiB\" }, untilEvent = \"download-finished\", timeout = \"30s\" } }",
        )?;
        match &steps[..] {
            [Action::ExpectResources(e)] => {
                assert_eq!(e.open_files.map(|b| b.at_most), Some(256));
                assert_eq!(e.rss.map(|b| b.at_most), Some(Size(64 << 20)));
                assert_eq!(e.until_event.as_deref(), Some("download-finished"));
            }
            other => return Err(format!("{other:?}")),
        }
        for (src, want) in [
            ("expectResources { peer = \"c\" }", "at least one"),
            (
                "expectResources { peer = \"c\", rss = { atmost = 1 } }",
                "unknown field `atmost`",
            ),
            (
                "expectResources { peer = \"c\", rss = { atMost = 1 }, timeout = 3 }",
                "need `untilEvent`",
            ),
            (
                "expectResources { peer = \"c\", openFiles = { atMost = \"x\" } }",
                "openFiles.atMost: expected a whole number, got the string \"x\"",
            ),
        ] {
            let e = parse(&format!("scenario {{ {src} }}")).err();
            assert!(
                e.as_deref().is_some_and(|e| e.contains(want)),
                "{src}: {e:?}"
            );
        }
        Ok(())
    }
}
