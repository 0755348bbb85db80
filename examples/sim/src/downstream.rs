//! The downstream model: replicas with a concurrency limit and a FIFO queue, log-normal
//! service times that grow with queueing, failures that grow with overload, and phases that
//! change all of it over time. Nothing here is scripted per request: retry storms, queueing
//! collapse and recovery come out of the arithmetic.

use std::collections::VecDeque;

use crate::engine::{Kind, Queue, Reply};
use crate::rng::Rng;
use crate::scenario::{Downstream, Phase};

#[derive(Copy, Clone, Debug)]
struct Waiting {
    task: u32,
    req: u64,
}

#[derive(Debug, Default)]
struct Replica {
    busy: u32,
    queue: VecDeque<Waiting>,
}

/// What a replica is like at one instant, phases applied.
#[derive(Copy, Clone, Debug)]
struct Params {
    capacity: f64,
    latency_factor: f64,
    errors: f64,
    refuse: bool,
}

/// The downstream's state during a run.
#[derive(Debug)]
pub(crate) struct Model {
    spec: Downstream,
    phases: Vec<Phase>,
    replicas: Vec<Replica>,
    next_replica: u32,
    rng: Rng,
    /// Requests at the downstream now: served or queued.
    in_flight: u32,
    /// Calls that reached the downstream (refused ones included).
    pub(crate) calls: u64,
    /// The most requests served or queued at once.
    pub(crate) peak: u32,
    /// Per time bucket: calls, and the peak of requests in flight.
    pub(crate) bucket_calls: Vec<u64>,
    pub(crate) bucket_peak: Vec<u32>,
    bucket_ns: u64,
    /// OCC: the instant of the last successful commit.
    last_commit: u64,
    /// `spec.latency` in ns, converted once (a `u128` to `f64` conversion is a library call).
    latency_ns: f64,
}

impl Model {
    pub(crate) fn new(
        spec: Downstream,
        phases: Vec<Phase>,
        seed: u64,
        bucket_ns: u64,
        buckets: usize,
    ) -> Model {
        let replicas = (0..spec.replicas).map(|_| Replica::default()).collect();
        Model {
            latency_ns: spec.latency.as_nanos() as f64,
            spec,
            phases,
            replicas,
            next_replica: 0,
            rng: Rng::stream(seed, 2),
            in_flight: 0,
            calls: 0,
            peak: 0,
            bucket_calls: vec![0; buckets],
            bucket_peak: vec![0; buckets],
            bucket_ns: bucket_ns.max(1),
            last_commit: 0,
        }
    }

    fn bucket(&self, now: u64) -> usize {
        ((now / self.bucket_ns) as usize).min(self.bucket_calls.len().saturating_sub(1))
    }

    fn params(&self, now: u64, replica: u32) -> Params {
        let mut p = Params {
            capacity: 1.0,
            latency_factor: 1.0,
            errors: self.spec.errors,
            refuse: false,
        };
        for ph in &self.phases {
            let (from, until) = (ph.from.as_nanos() as u64, ph.until.as_nanos() as u64);
            if now < from || now >= until || ph.replica.is_some_and(|r| r != replica) {
                continue;
            }
            if let Some(c) = ph.capacity {
                p.capacity = c;
            }
            if let Some(l) = ph.latency_factor {
                p.latency_factor = l;
            }
            if let Some(e) = ph.errors {
                p.errors = e;
            }
            if ph.refuse {
                p.refuse = true;
            }
        }
        p
    }

    /// The arrival-rate multiplier of the phases at `now`.
    pub(crate) fn rate_factor(&self, now: u64) -> f64 {
        let mut f = 1.0;
        for ph in &self.phases {
            let (from, until) = (ph.from.as_nanos() as u64, ph.until.as_nanos() as u64);
            if now >= from
                && now < until
                && let Some(r) = ph.rate_factor
            {
                f = r;
            }
        }
        f
    }

    fn slots(&self, p: &Params) -> u32 {
        if self.spec.occ {
            u32::MAX
        } else {
            (f64::from(self.spec.concurrency) * p.capacity).round() as u32
        }
    }

    fn note_in_flight(&mut self, now: u64) {
        self.peak = self.peak.max(self.in_flight);
        let b = self.bucket(now);
        if let Some(p) = self.bucket_peak.get_mut(b) {
            *p = (*p).max(self.in_flight);
        }
    }

    /// A call arrives at `now` for `task`, request `req`: served, queued, or refused. Its
    /// answer is scheduled on `q`.
    pub(crate) fn submit(&mut self, now: u64, task: u32, req: u64, q: &mut Queue) {
        self.calls += 1;
        let b = self.bucket(now);
        if let Some(c) = self.bucket_calls.get_mut(b) {
            *c += 1;
        }
        let r = self.next_replica;
        self.next_replica = (r + 1) % self.spec.replicas;
        let p = self.params(now, r);
        let reject_at = now.saturating_add(self.spec.reject_latency.as_nanos() as u64);
        if p.refuse {
            q.push(
                reject_at,
                Kind::Reply {
                    task,
                    req,
                    reply: Reply::Refused,
                    server: None,
                    started: now,
                },
            );
            return;
        }
        let slots = self.slots(&p);
        let rep = &self.replicas[r as usize];
        if rep.busy < slots {
            self.in_flight += 1;
            self.note_in_flight(now);
            self.start(now, r, Waiting { task, req }, &p, q);
        } else if (rep.queue.len() as u64) < u64::from(self.spec.queue) {
            self.in_flight += 1;
            self.note_in_flight(now);
            self.replicas[r as usize]
                .queue
                .push_back(Waiting { task, req });
        } else {
            q.push(
                reject_at,
                Kind::Reply {
                    task,
                    req,
                    reply: Reply::Overloaded,
                    server: None,
                    started: now,
                },
            );
        }
    }

    fn start(&mut self, now: u64, r: u32, w: Waiting, p: &Params, q: &mut Queue) {
        let spec = &self.spec;
        let rep = &mut self.replicas[r as usize];
        rep.busy += 1;
        let queued = rep.queue.len() as f64;
        let fill = if spec.queue == 0 {
            0.0
        } else {
            queued / f64::from(spec.queue)
        };
        let slow = 1.0 + spec.slowdown * fill;
        let median = self.latency_ns * p.latency_factor;
        let t = self.rng.log_normal(median, spec.latency_sigma) * slow;
        let fail = self.rng.chance(p.errors + spec.overload_errors * fill);
        q.push(
            now.saturating_add(t.max(1.0) as u64),
            Kind::Reply {
                task: w.task,
                req: w.req,
                reply: if fail { Reply::Failed } else { Reply::Ok },
                server: Some(r),
                started: now,
            },
        );
    }

    /// A served request ends at `now` on replica `r`: frees its slot, starts queued work, and
    /// returns the answer the caller gets (an OCC conflict turns a success into a failure).
    pub(crate) fn finish(
        &mut self,
        now: u64,
        r: u32,
        reply: Reply,
        started: u64,
        q: &mut Queue,
    ) -> Reply {
        self.in_flight -= 1;
        self.replicas[r as usize].busy -= 1;
        self.drain(now, r, q);
        if self.spec.occ && reply == Reply::Ok {
            if self.last_commit > started {
                return Reply::Conflict;
            }
            self.last_commit = now;
        }
        reply
    }

    fn drain(&mut self, now: u64, r: u32, q: &mut Queue) {
        let p = self.params(now, r);
        let slots = self.slots(&p);
        while self.replicas[r as usize].busy < slots {
            let Some(w) = self.replicas[r as usize].queue.pop_front() else {
                break;
            };
            self.start(now, r, w, &p, q);
        }
    }

    /// A phase began or ended: capacity may have come back.
    pub(crate) fn phase_changed(&mut self, now: u64, q: &mut Queue) {
        for r in 0..self.spec.replicas {
            self.drain(now, r, q);
        }
    }

    /// The instants at which some phase begins or ends.
    pub(crate) fn boundaries(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .phases
            .iter()
            .flat_map(|p| [p.from.as_nanos() as u64, p.until.as_nanos() as u64])
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
