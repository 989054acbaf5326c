//! Streams: the registry of live streams, per-core GOP rings, viewer cursors with
//! slow-viewer policy, and timestamp normalisation. It routes frames and knows
//! nothing of sockets or wire formats.
