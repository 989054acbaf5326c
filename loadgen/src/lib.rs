//! loadgen: simulated viewers and publishers for sizing ringcast edge boxes and
//! proving its numbers.
//!
//! The measuring logic is sans-IO like ringcast's protocol layer, so it is unit-tested
//! without sockets: [`stamp`] (latency stamps inside H.264), [`synthetic`] (an
//! encoder-free media source), [`viewer`] (what one viewer saw) and [`stats`]
//! (mergeable histograms and counters).
//!
//! The I/O side: [`worker`] drives clients on ringcast's io_uring reactor, one pinned
//! thread per process; [`orchestrate`] splits a run into worker processes and merges
//! their results into a [`report::Report`].

#![warn(missing_docs)]

pub mod arena;
pub mod cli;
pub mod filesource;
pub mod hls;
pub mod httpflv;
pub mod net;
pub mod orchestrate;
pub mod report;
pub mod rtmp;
pub mod spec;
pub mod stamp;
pub mod stats;
pub mod synthetic;
pub mod target;
pub mod tls;
pub mod units;
pub mod viewer;
pub mod worker;
