//! Reading what the end-to-end tests need out of ringcast's LL-HLS media
//! playlists.

#![allow(dead_code)]

/// The media playlist's preload hint `(msn, part)`.
pub fn preload_hint(playlist: &str) -> (u64, u32) {
    let uri = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|u| u.split('"').next())
        .unwrap_or_else(|| panic!("no preload hint in {playlist}"));
    let name = uri.rsplit('/').next().unwrap().trim_end_matches(".m4s");
    let (msn, part) = name.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}
