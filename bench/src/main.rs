//! `publinks-bench`: measured, not assumed. Each benchmark runs publinks and a
//! baseline in the same process and prints both and their ratio (absolute
//! times drift on shared machines; ratios hold). Run through
//! `scripts/bench.sh`, in release mode.

mod download;
mod links;
mod public;
mod zip;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Create and list links in an account of 10,000 links, against the raw store.
    Links {
        #[arg(long, default_value_t = 10_000)]
        links: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Listings of all the links, each through the API then on the raw store; medians are printed.
        #[arg(long, default_value_t = 9)]
        rounds: usize,
    },
    /// Load on the visitor's endpoints with wrk, against a trivial handler on the same server.
    Public {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1000)]
        files: usize,
    },
    /// Archives of (a) 1,000 files of 200 KiB and (b) 4 of 1 GiB, against Info-ZIP's zip.
    Zip {
        #[arg(long, default_value_t = 1000)]
        small_files: usize,
        #[arg(long, default_value_t = 4)]
        large_files: usize,
        /// The size of each large file (MiB): smaller for a quicker run.
        #[arg(long, default_value_t = 1024)]
        large_mib: u64,
        /// How the text files are deflated, each a build of its own:
        /// `zlib-rs:LEVEL` or `libdeflate:LEVEL`, comma-separated.
        #[arg(long, default_value = "zlib-rs:6,libdeflate:6")]
        deflate: String,
        /// Rounds of (a), builds and `zip` alternating, on the same files.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// A large archive downloaded from the local server's signed URL over loopback, against a plain file copy.
    Download {
        #[arg(long, default_value_t = 4)]
        gib: u64,
    },
    /// (Internal) builds one archive job of a benchmark's store, in its own process.
    #[command(hide = true)]
    ZipBuild {
        #[arg(long)]
        data: std::path::PathBuf,
        #[arg(long)]
        job: String,
        #[arg(long)]
        no_copies: bool,
        #[arg(long, default_value = "zlib-rs:6")]
        deflate: String,
    },
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.bench {
        Bench::Links { links, concurrency, rounds } => links::run(links, concurrency, rounds.max(1)).await,
        Bench::Public { seconds, files } => public::run(seconds, files).await,
        Bench::Zip { small_files, large_files, large_mib, deflate, rounds } => {
            zip::run(small_files, large_files, large_mib, &deflate, rounds).await
        }
        Bench::Download { gib } => download::run(gib).await,
        Bench::ZipBuild { data, job, no_copies, deflate } => zip::build_one(data, job, !no_copies, &deflate).await,
    }
}

/// A running local server for a benchmark.
pub struct Server {
    pub base: String,
    pub app: publinks_local::LocalApp,
    pub _dir: tempfile::TempDir,
}

/// Starts the local server (demo account seeded) on a free loopback port.
pub async fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = publinks_local::LocalConfig {
        data_dir: dir.path().to_path_buf(),
        base_url: base.clone(),
        seed_demo: true,
        share_demo: false,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let app = publinks_local::LocalApp::build(&config).await.expect("server builds");
    let service = app.router.clone().into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    Server { base, app, _dir: dir }
}

/// A bound one of issue 17's targets sets on a figure.
#[derive(Clone, Copy)]
pub enum Bound {
    /// The figure must reach this value.
    AtLeast(f64),
    /// The figure must not pass this value.
    AtMost(f64),
    /// The figure must stay under this value.
    Below(f64),
}

/// Prints whether `value` meets the target `bound` sets for `what`.
pub fn target(what: &str, value: f64, bound: Bound) {
    println!("  target: {}", target_line(what, value, bound));
}

/// The words of [`target`]'s line: the bound, the figure and the verdict.
fn target_line(what: &str, value: f64, bound: Bound) -> String {
    let (met, sign, limit) = match bound {
        Bound::AtLeast(limit) => (value >= limit, ">=", limit),
        Bound::AtMost(limit) => (value <= limit, "<=", limit),
        Bound::Below(limit) => (value < limit, "<", limit),
    };
    let verdict = if met { "met" } else { "not met" };
    format!("{what} {sign} {limit}: {value:.3}, {verdict}")
}

/// Prints one row of results: publinks, the baseline, and their ratio.
pub fn row(what: &str, unit: &str, ours: f64, baseline: f64) {
    println!("{what:<44} {ours:>12.1} {unit:<8} baseline {baseline:>12.1} {unit:<8} ratio {:>6.3}", ours / baseline);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_line_says_the_bound_the_figure_and_whether_it_is_met() {
        assert_eq!(target_line("ratio", 0.2, Bound::AtLeast(0.2)), "ratio >= 0.2: 0.200, met");
        assert_eq!(target_line("ratio", 0.188, Bound::AtLeast(0.2)), "ratio >= 0.2: 0.188, not met");
        assert_eq!(target_line("p99", 5.0, Bound::AtMost(5.0)), "p99 <= 5: 5.000, met");
        assert_eq!(target_line("p99", 8.25, Bound::AtMost(5.0)), "p99 <= 5: 8.250, not met");
        assert_eq!(target_line("RSS", 127.9, Bound::Below(128.0)), "RSS < 128: 127.900, met");
        assert_eq!(target_line("RSS", 128.0, Bound::Below(128.0)), "RSS < 128: 128.000, not met");
    }
}
