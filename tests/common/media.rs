//! Media helpers shared by the tests that use ffmpeg/ffprobe as the oracle for
//! ringcast's muxers: running a tool with a deadline, scratch directories, the
//! committed FLV fixtures as frames, looping them into longer streams, and the
//! ffmpeg/ffprobe invocations those tests have in common.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringcast::protocol::flv::{FlvDemuxer, FlvLimits};
use ringcast::protocol::{Frame, FrameKind};
use serde_json::Value;

/// How long one ffmpeg/ffprobe run may take before the test fails.
const TOOL_LIMIT: Duration = Duration::from_secs(120);

/// Runs `tool` (from the ffmpeg package) with `args` within [`TOOL_LIMIT`];
/// returns (stdout, stderr). Panics naming the tool when it is not installed,
/// runs past the limit or exits unsuccessfully.
pub fn run_tool(tool: &str, args: &[&str]) -> (String, String) {
    let exe = super::require::command(tool, "ffmpeg");
    let started = Instant::now();
    let out = super::run_bounded(Command::new(exe).args(args), TOOL_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() || started.elapsed() < TOOL_LIMIT,
        "{tool} {args:?} ran past {TOOL_LIMIT:?}"
    );
    assert!(out.status.success(), "{tool} {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// A fresh scratch directory under the system temp dir, named after the test
/// binary's `prefix`, `name` and this process; removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates (after clearing any leftover of the same name) the directory.
    pub fn new(prefix: &str, name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ringcast-{prefix}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// `file` inside the directory.
    pub fn join(&self, file: impl AsRef<Path>) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every frame of the committed fixture `tests/data/flv/<name>`, demuxed by
/// ringcast's own FLV demuxer.
pub fn flv_fixture(name: &str) -> Vec<Frame> {
    let path = format!("{}/tests/data/flv/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut d = FlvDemuxer::new(FlvLimits::default());
    let mut out = Vec::new();
    d.decode_all(&data, &mut out).expect("fixture demuxes");
    out
}

/// Whether `f` is a coded frame of `kind`: not a sequence header, not an AVC
/// end-of-sequence tag (AVC/AAC packet type 1).
pub fn is_coded(f: &Frame, kind: FrameKind) -> bool {
    f.kind == kind && !f.sequence_header && f.payload.get(1) == Some(&1)
}

/// `frames` repeated `times` times on one timeline, pass `i` shifted by
/// `i * period_ms`, as a publisher looping a file would send them.
pub fn repeat(frames: &[Frame], times: u32, period_ms: u32) -> Vec<Frame> {
    (0..times)
        .flat_map(|i| {
            frames
                .iter()
                .map(move |f| Frame::new(f.kind, f.timestamp + i * period_ms, f.payload.clone()))
        })
        .collect()
}

/// ffmpeg encodes `seconds` of its `testsrc` at `size_rate` (e.g.
/// `size=320x240:rate=25`) as yuv420p with the output options `encode`
/// (codec, container, output path).
pub fn encode_testsrc(size_rate: &str, seconds: &str, encode: &[&str]) {
    let input = format!("testsrc={size_rate}");
    let mut args = vec![
        "-v", "error", "-y", "-f", "lavfi", "-i", &input, "-t", seconds, "-pix_fmt", "yuv420p",
    ];
    args.extend_from_slice(encode);
    run_tool("ffmpeg", &args);
}

/// ffmpeg decodes every stream of `input` to nothing and reports no error.
pub fn decodes_cleanly(input: &Path) {
    let input = input.to_str().expect("utf-8 path");
    let (_, stderr) = run_tool(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-xerror", "-i", input, "-f", "null", "-",
        ],
    );
    assert!(
        stderr.trim().is_empty(),
        "ffmpeg reported for {input}: {stderr}"
    );
}

/// ffprobe's streams of `input` (codec, tag, type, size, sample rate,
/// channels, decoded frame count); ffprobe must report nothing at `error`.
pub fn probe_streams(input: &Path) -> Vec<Value> {
    let input = input.to_str().expect("utf-8 path");
    let (stdout, stderr) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,codec_tag_string,codec_type,width,height,sample_rate,channels,\
             nb_read_frames",
            "-of",
            "json",
            input,
        ],
    );
    assert!(
        stderr.trim().is_empty(),
        "ffprobe reported for {input}: {stderr}"
    );
    let v: Value = serde_json::from_str(&stdout).expect("ffprobe json");
    v["streams"].as_array().cloned().unwrap_or_default()
}

/// The `nb_read_frames` ffprobe counted for stream `s`.
pub fn frames_read(s: &Value) -> u64 {
    s["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("nb_read_frames")
}
