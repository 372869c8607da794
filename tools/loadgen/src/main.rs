//! loadgen: measures how many connections per second a Unix-domain socket
//! server completes, and how long each one takes.
//!
//!     loadgen SOCKET [-c K] [-n N] [-t SECS] [-w TIMEOUT_MS]
//!
//! K worker threads (default 1) each loop: connect to SOCKET, read to EOF,
//! record the latency (connect start to EOF). The run stops after N
//! connections in total (default 100000) or SECS seconds (default 10),
//! whichever comes first, so it is always bounded. A connection counts as
//! an error, never as a success, when connect fails, a read fails or times
//! out (TIMEOUT_MS, default 5000), or the server closes without sending a
//! byte (a denied or broken chain). A worker still blocked (in connect, which
//! has no timeout, against a server whose backlog is full and which accepts
//! no more) TIMEOUT_MS after the end is abandoned and counted in err_stuck;
//! the program then exits anyway. Output, one line:
//!
//!     conns=N secs=S conn_per_s=R p50_us=P p99_us=Q errors=E err_connect=A err_read=B err_empty=C err_stuck=D
//!
//! conns counts successful connections only; conn_per_s is conns / secs.
//! Exit status: 0 no errors, 1 some errors, 100 usage.

use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

struct Config {
    socket: PathBuf,
    workers: usize,
    max_conns: u64,
    duration: Duration,
    read_timeout: Duration,
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    err_connect: u64,
    err_read: u64,
    err_empty: u64,
    err_stuck: u64,
}

enum Outcome {
    Ok,
    ConnectFailed,
    ReadFailed,
    Empty,
}

fn usage() -> ! {
    eprintln!("loadgen: usage: loadgen SOCKET [-c K] [-n N] [-t SECS] [-w TIMEOUT_MS]");
    exit(100)
}

fn parse_args() -> Config {
    let mut args = std::env::args_os().skip(1);
    let mut socket = None;
    let mut config = Config {
        socket: PathBuf::new(),
        workers: 1,
        max_conns: 100_000,
        duration: Duration::from_secs(10),
        read_timeout: Duration::from_millis(5000),
    };
    while let Some(arg) = args.next() {
        let flag = arg.to_str().unwrap_or("");
        if !flag.starts_with('-') {
            if socket.replace(PathBuf::from(&arg)).is_some() {
                usage();
            }
            continue;
        }
        let value = args.next().and_then(|v| v.into_string().ok()).unwrap_or_else(|| usage());
        match flag {
            "-c" => config.workers = value.parse().ok().filter(|&k| (1..=4096).contains(&k)).unwrap_or_else(|| usage()),
            "-n" => config.max_conns = value.parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| usage()),
            "-t" => {
                let secs: f64 = value.parse().ok().filter(|&s: &f64| s > 0.0 && s <= 3600.0).unwrap_or_else(|| usage());
                config.duration = Duration::from_secs_f64(secs);
            }
            "-w" => config.read_timeout = Duration::from_millis(value.parse().ok().filter(|&ms| ms >= 1).unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    config.socket = socket.unwrap_or_else(|| usage());
    config
}

/// One connection: connect, read everything until the server closes.
fn one_connection(config: &Config) -> Outcome {
    let mut stream = match UnixStream::connect(&config.socket) {
        Ok(s) => s,
        Err(_) => return Outcome::ConnectFailed,
    };
    if stream.set_read_timeout(Some(config.read_timeout)).is_err() {
        return Outcome::ReadFailed;
    }
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::ReadFailed,
        }
    }
    if total == 0 {
        Outcome::Empty
    } else {
        Outcome::Ok
    }
}

fn worker(config: &Config, claimed: &AtomicU64, deadline: Instant) -> WorkerResult {
    let mut result = WorkerResult::default();
    loop {
        let start = Instant::now();
        if start >= deadline || claimed.fetch_add(1, Ordering::Relaxed) >= config.max_conns {
            return result;
        }
        match one_connection(config) {
            Outcome::Ok => {
                let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
                result.latencies_us.push(us);
            }
            Outcome::ConnectFailed => {
                result.err_connect += 1;
                // A server that is down refuses at once: do not spin.
                thread::sleep(Duration::from_millis(1));
            }
            Outcome::ReadFailed => result.err_read += 1,
            Outcome::Empty => result.err_empty += 1,
        }
    }
}

/// The value below which `pct` percent of the sorted samples fall.
fn percentile(sorted: &[u32], pct: usize) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() - 1) * pct / 100]
}

fn main() {
    let config = Arc::new(parse_args());
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + config.duration;
    let (results, received) = mpsc::channel();
    for _ in 0..config.workers {
        let config = Arc::clone(&config);
        let claimed = Arc::clone(&claimed);
        let results = results.clone();
        thread::spawn(move || {
            // The receiver is gone only if main gave up on this worker.
            let _ = results.send(worker(&config, &claimed, deadline));
        });
    }
    let give_up = deadline + config.read_timeout;
    let mut total = WorkerResult::default();
    for _ in 0..config.workers {
        let wait = give_up.saturating_duration_since(Instant::now());
        match received.recv_timeout(wait) {
            Ok(r) => {
                total.latencies_us.extend(r.latencies_us);
                total.err_connect += r.err_connect;
                total.err_read += r.err_read;
                total.err_empty += r.err_empty;
            }
            Err(_) => total.err_stuck += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let conns = total.latencies_us.len();
    let errors = total.err_connect + total.err_read + total.err_empty + total.err_stuck;
    println!(
        "conns={} secs={:.3} conn_per_s={:.1} p50_us={} p99_us={} errors={} err_connect={} err_read={} err_empty={} err_stuck={}",
        conns,
        secs,
        conns as f64 / secs,
        percentile(&total.latencies_us, 50),
        percentile(&total.latencies_us, 99),
        errors,
        total.err_connect,
        total.err_read,
        total.err_empty,
        total.err_stuck
    );
    exit(if errors > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_of_empty_is_zero() {
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn percentile_picks_rank_from_sorted_samples() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), 50);
        assert_eq!(percentile(&samples, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
    }
}
