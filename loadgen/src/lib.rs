//! loadgen: simulated viewers and publishers for sizing ringcast edge boxes and
//! proving its numbers.
//!
//! The measuring logic is sans-IO like ringcast's protocol layer, so it is unit-tested
//! without sockets: [`stamp`] (latency stamps inside H.264), [`synthetic`] (an
//! encoder-free media source), [`viewer`] (what one viewer saw) and [`stats`]
//! (mergeable histograms and counters).

pub mod stamp;
pub mod synthetic;
pub mod stats;
pub mod viewer;
pub mod target;
pub mod chunked;
pub mod arena;
pub mod httpflv;
pub mod spec;
pub mod net;
pub mod worker;
pub mod report;
pub mod orchestrate;
pub mod units;
pub mod cli;
pub mod filesource;
pub mod rtmp;
