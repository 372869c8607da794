//! How a fork-per-connection server starts each connection's child: the
//! choice between a vfork-style spawn and a fork, made from measurements
//! of the machine as it runs.
//!
//! A vfork-style spawn ([`crate::runtime::spawn`]) costs the least work,
//! but suspends the accept loop until the child has executed its program;
//! a fork copies the server's page tables (and makes it take copy-on-write
//! faults until the child execs) but lets the loop go on at once. Which
//! serves more connections depends on the machine and its load: measured
//! here (tools/bench_spawn.sh), vfork serves a third more connections at
//! 16 clients on a quiet machine, and fork a third more when another
//! process keeps one of its two CPUs busy, where a suspended loop waits
//! for a child that waits for a CPU.
//!
//! So: a connection with no other waiting behind it is spawned (nothing
//! waits for the loop), unless it ends a burst. Connections that find
//! others waiting, and the last one of their burst, are started the
//! "busy" way, which the policy picks by measuring: it counts
//! connections in windows of [`WINDOW`], and a window where at least half
//! of them found another waiting gives the busy way of that window a rate
//! (connections per second). The busy way is then the one whose last
//! [`RATES`] rates have the better median: one window's rate moves by a
//! tenth or more on a shared machine, and a single lucky window of the
//! slower way would otherwise hand it the next [`PROBE_EVERY`] windows
//! (measured: 0.88x vfork alone at 16 clients on a quiet machine, where
//! the median rule serves as vfork alone does). Both are tried first, fork
//! first. Since the load changes, the other way is then tried again, for a
//! short window ([`PROBE_WINDOW`]), every [`PROBE_EVERY`] windows; each
//! probe that finds it slower doubles the windows to the next, up to
//! [`PROBE_EVERY_MOST`], and a change (of the busy way, or of whether the
//! CPU is contended) brings them back to [`PROBE_EVERY`]. The probed way is
//! usually the slower, by a third at 16 clients on a quiet machine:
//! probing it for whole windows every 16 cost 5% of the connections
//! against vfork alone, short probes that back off are within noise of it
//! (0.97x to 1.03x; measured with tools/bench_spawn.sh).
//!
//! The same windows say whether the server's CPU is contended: more than
//! one preemption of the server (an involuntary context switch) for every
//! [`PREEMPTED_ONE_IN`] connections of the last window. A quiet machine
//! preempts the server about once in a hundred connections, one with a CPU
//! hog beside it once in five or more (measured with one client). The
//! server uses it to decide how to collect its children (see ipcserverd):
//! where the CPU is contended, every wake of the server is waited for by
//! others.
//!
//! It does not measure anything itself: the caller reads the monotonic
//! clock and the server's preemptions when asked, so that it is a function
//! of what it is told (and tested as one). No allocation; a few words of
//! state.

/// How a child is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spawn {
    /// Vfork-style: cheapest, the loop waits for the child's exec.
    Vfork,
    /// Fork: the loop goes on at once.
    Fork,
}

impl Spawn {
    fn index(self) -> usize {
        self as usize
    }

    fn other(self) -> Spawn {
        match self {
            Spawn::Vfork => Spawn::Fork,
            Spawn::Fork => Spawn::Vfork,
        }
    }
}

/// Connections per measuring window.
pub const WINDOW: u32 = 128;

/// One window in this many tries the busy way not in use, after a change
/// (of the busy way, or of whether the CPU is contended).
pub const PROBE_EVERY: u32 = 16;

/// Each probe the other way loses doubles the windows to the next, up to
/// this many.
pub const PROBE_EVERY_MOST: u32 = 4 * PROBE_EVERY;

/// Connections in a probe's window.
pub const PROBE_WINDOW: u32 = WINDOW / 4;

/// The rates kept per way, of which the median decides.
pub const RATES: usize = 3;

/// More preemptions than one in this many connections: the CPU is
/// contended.
pub const PREEMPTED_ONE_IN: u32 = 20;

/// What the caller reads for the policy, at the start and the end of each
/// window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The monotonic clock, in nanoseconds.
    pub ns: u64,
    /// How many times the server has been preempted so far (its
    /// involuntary context switches).
    pub preempted: u64,
}

/// The policy's state: see the module's documentation.
pub struct SpawnPolicy {
    busy: Spawn,
    /// Connections per second in the last [`RATES`] busy windows of each
    /// way, oldest first (all 0: not measured yet; the first measure fills
    /// them all).
    rates: [[u64; RATES]; 2],
    /// What was read when the current window began.
    began: Reading,
    served: u32,
    found_waiting: u32,
    until_probe: u32,
    /// Windows from one probe to the next, [`PROBE_EVERY`] to
    /// [`PROBE_EVERY_MOST`].
    probe_every: u32,
    /// The current window is a probe's ([`PROBE_WINDOW`] long).
    probing: bool,
    /// The last connection found another waiting.
    in_burst: bool,
    /// The last window found the CPU contended.
    contended: bool,
}

impl Default for SpawnPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl SpawnPolicy {
    /// Nothing measured yet: the busy way is tried as a fork first.
    pub const fn new() -> SpawnPolicy {
        SpawnPolicy {
            busy: Spawn::Fork,
            rates: [[0; RATES]; 2],
            began: Reading { ns: 0, preempted: 0 },
            served: 0,
            found_waiting: 0,
            until_probe: PROBE_EVERY,
            probe_every: PROBE_EVERY,
            probing: false,
            in_burst: false,
            contended: false,
        }
    }

    /// How to start the child of a connection, given whether another
    /// connection is `waiting` behind it; `read` reads the clock and the
    /// preemptions (called twice in a window).
    pub fn way(&mut self, waiting: bool, read: impl Fn() -> Reading) -> Spawn {
        // The last connection of a burst (the one before had another
        // waiting) is still the burst's: a vfork there would stall the
        // loop just as the next clients arrive.
        let way = if waiting || self.in_burst { self.busy } else { Spawn::Vfork };
        self.in_burst = waiting;
        self.count(waiting, read);
        way
    }

    /// The busy way now in use.
    pub fn busy(&self) -> Spawn {
        self.busy
    }

    /// Whether the last window found the server's CPU contended (none
    /// measured yet: not).
    pub fn contended(&self) -> bool {
        self.contended
    }

    fn count(&mut self, waiting: bool, read: impl Fn() -> Reading) {
        if self.served == 0 {
            self.began = read();
        }
        self.served += 1;
        self.found_waiting += u32::from(waiting);
        let window = if self.probing { PROBE_WINDOW } else { WINDOW };
        if self.served < window {
            return;
        }
        let end = read();
        let preempted = end.preempted.saturating_sub(self.began.preempted);
        let contended = preempted * u64::from(PREEMPTED_ONE_IN) > u64::from(window);
        if contended != self.contended {
            // The load changed: the way not in use may be the faster now.
            self.contended = contended;
            self.probe_every = PROBE_EVERY;
            self.until_probe = self.until_probe.min(PROBE_EVERY);
        }
        // A window where connections mostly waited says how fast the busy
        // way serves; one where they did not says nothing about it.
        if self.found_waiting >= window / 2 {
            let elapsed = end.ns.saturating_sub(self.began.ns).max(1);
            self.record(u64::from(window) * 1_000_000_000 / elapsed);
            self.busy = self.next_busy();
        }
        self.served = 0;
        self.found_waiting = 0;
    }

    /// Keeps `rate` as the newest of the busy way's.
    fn record(&mut self, rate: u64) {
        let rates = &mut self.rates[self.busy.index()];
        if *rates == [0; RATES] {
            *rates = [rate; RATES];
        } else {
            rates.rotate_left(1);
            rates[RATES - 1] = rate;
        }
    }

    /// The median of a way's kept rates (0: not measured yet).
    fn rate(&self, way: Spawn) -> u64 {
        let mut r = self.rates[way.index()];
        r.sort_unstable();
        r[RATES / 2]
    }

    fn next_busy(&mut self) -> Spawn {
        let other = self.busy.other();
        let probed = core::mem::take(&mut self.probing);
        if self.rate(other) == 0 {
            return other;
        }
        let faster = if self.rate(other) > self.rate(self.busy) { other } else { self.busy };
        if probed {
            // `other` is the way in use before the probe: if it is still
            // the faster, the next probe comes twice as late; if the
            // probed way won, at the usual pace.
            self.probe_every = if faster == other { (self.probe_every * 2).min(PROBE_EVERY_MOST) } else { PROBE_EVERY };
            self.until_probe = self.probe_every;
        } else if faster != self.busy {
            self.probe_every = PROBE_EVERY;
            self.until_probe = PROBE_EVERY;
        }
        self.until_probe -= 1;
        if self.until_probe == 0 {
            self.probing = true;
            return faster.other();
        }
        faster
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading at `ns`, the server never preempted.
    fn at(ns: u64) -> Reading {
        Reading { ns, preempted: 0 }
    }

    /// Runs `windows` windows of connections that all find another
    /// waiting, each taking `ns(way)` nanoseconds; the busy way of each.
    fn run(policy: &mut SpawnPolicy, windows: usize, ns: impl Fn(Spawn) -> u64) -> Vec<Spawn> {
        Machine::default().run(policy, windows, ns)
    }

    /// A clock and a count of preemptions that go on from one run to the
    /// next.
    #[derive(Default)]
    struct Machine {
        ns: u64,
        preempted: u64,
        /// Every connection preempts the server once.
        contended: bool,
    }

    impl Machine {
        fn run(&mut self, policy: &mut SpawnPolicy, windows: usize, ns: impl Fn(Spawn) -> u64) -> Vec<Spawn> {
            let mut ways = Vec::new();
            for _ in 0..windows {
                let way = policy.busy();
                ways.push(way);
                let len = if policy.probing { PROBE_WINDOW } else { WINDOW };
                for _ in 0..len {
                    let now = Reading { ns: self.ns, preempted: self.preempted };
                    assert_eq!(policy.way(true, || now), way, "one way in a window");
                    self.ns += ns(way) * u64::from(WINDOW / len);
                    self.preempted += u64::from(self.contended);
                }
            }
            ways
        }
    }

    /// The windows that tried the other way than `usual`.
    fn probes(ways: &[Spawn], usual: Spawn) -> Vec<usize> {
        ways.iter().enumerate().filter(|(_, &w)| w != usual).map(|(i, _)| i).collect()
    }

    #[test]
    fn nothing_waiting_is_always_a_vfork() {
        let mut p = SpawnPolicy::new();
        for i in 0..10 * WINDOW {
            assert_eq!(p.way(false, || at(u64::from(i))), Spawn::Vfork);
        }
        // Such windows measure nothing: fork is still to be tried.
        assert_eq!(p.busy(), Spawn::Fork);
    }

    #[test]
    fn both_are_tried_then_the_faster_kept_and_the_other_probed_less_and_less() {
        let mut p = SpawnPolicy::new();
        // Vfork faster (a quiet machine).
        let e = PROBE_EVERY as usize;
        let ways = run(&mut p, 2 + e * 11, |w| if w == Spawn::Vfork { 100 } else { 150 });
        assert_eq!(&ways[..2], &[Spawn::Fork, Spawn::Vfork]);
        let forks = probes(&ways[2..], Spawn::Vfork);
        let gaps: Vec<usize> = forks.windows(2).map(|f| f[1] - f[0]).collect();
        assert_eq!(forks[0], e - 1, "first probe {PROBE_EVERY} windows after vfork's first: {ways:?}");
        assert_eq!(gaps, [2 * e, 4 * e, 4 * e], "{ways:?}");
    }

    #[test]
    fn a_change_of_contention_brings_the_probes_back() {
        let mut p = SpawnPolicy::new();
        let mut m = Machine::default();
        let quiet = |w| if w == Spawn::Vfork { 100 } else { 150 };
        m.run(&mut p, 2 + 7 * PROBE_EVERY as usize, quiet);
        assert_eq!(p.probe_every, PROBE_EVERY_MOST, "backed off");
        m.contended = true;
        let ways = m.run(&mut p, 1 + PROBE_EVERY as usize, quiet);
        assert!(!probes(&ways, Spawn::Vfork).is_empty(), "a probe within {PROBE_EVERY} windows: {ways:?}");
    }

    #[test]
    fn a_change_of_load_changes_the_way() {
        let mut p = SpawnPolicy::new();
        run(&mut p, 4, |w| if w == Spawn::Vfork { 100 } else { 150 });
        assert_eq!(p.busy(), Spawn::Vfork);
        // Then fork becomes the faster (a busy machine): found at the next
        // probe, and kept.
        let ways = run(&mut p, 2 * PROBE_EVERY as usize, |w| if w == Spawn::Vfork { 200 } else { 150 });
        let last = &ways[PROBE_EVERY as usize + 1..];
        assert!(last.iter().filter(|&&w| w == Spawn::Fork).count() >= last.len() - 1, "{ways:?}");
    }

    #[test]
    fn one_lucky_window_of_the_slower_way_does_not_win() {
        let mut p = SpawnPolicy::new();
        run(&mut p, 4, |w| if w == Spawn::Vfork { 100 } else { 150 });
        assert_eq!(p.busy(), Spawn::Vfork);
        // The first probe's window of fork is faster than vfork's usual,
        // the next ones slow again: vfork keeps the windows between.
        let forked = core::cell::Cell::new(0);
        let ways = run(&mut p, 3 * PROBE_EVERY as usize, |w| match w {
            Spawn::Vfork => 100,
            Spawn::Fork => {
                forked.set(forked.get() + 1);
                if forked.get() <= PROBE_WINDOW {
                    90
                } else {
                    150
                }
            }
        });
        let forks = probes(&ways, Spawn::Vfork);
        assert_eq!(forks.len(), 2, "{ways:?}");
        assert!(forks[1] - forks[0] > 1, "only the probes: {ways:?}");
    }

    #[test]
    fn the_last_connection_of_a_burst_goes_the_bursts_way() {
        let mut p = SpawnPolicy::new();
        let ways: Vec<Spawn> = [false, true, true, false, false].iter().map(|&w| p.way(w, || at(0))).collect();
        assert_eq!(ways, [Spawn::Vfork, Spawn::Fork, Spawn::Fork, Spawn::Fork, Spawn::Vfork]);
    }

    #[test]
    fn windows_mostly_without_waiting_do_not_count() {
        let mut p = SpawnPolicy::new();
        let mut clock = 0;
        for i in 0..WINDOW {
            let waiting = i < WINDOW / 2 - 1;
            p.way(waiting, || at(clock));
            clock += 1_000;
        }
        assert_eq!(p.busy(), Spawn::Fork, "not measured: fork still the one to try");
    }

    /// Runs one window of lone connections during which the server is
    /// preempted `preempted` times; whether the policy then finds the CPU
    /// contended.
    fn contended_after(p: &mut SpawnPolicy, preempted: u64) -> bool {
        let last = u64::from(WINDOW) - 1;
        for i in 0..=last {
            // Preempted evenly across the window: none at its first
            // connection, all of them by its last.
            p.way(false, || Reading { ns: i, preempted: i * preempted / last });
        }
        p.contended()
    }

    #[test]
    fn contention_is_more_than_one_preemption_in_20_connections_of_the_last_window() {
        let mut p = SpawnPolicy::new();
        assert!(!p.contended(), "nothing measured: not contended");
        // A quiet machine (measured: about one in a hundred), then one
        // with a CPU hog (one in five or more), then quiet again.
        assert!(!contended_after(&mut p, u64::from(WINDOW) / 100));
        assert!(contended_after(&mut p, u64::from(WINDOW) / 5));
        assert!(!contended_after(&mut p, u64::from(WINDOW / PREEMPTED_ONE_IN)));
        assert!(contended_after(&mut p, u64::from(WINDOW / PREEMPTED_ONE_IN) + 2));
    }
}
