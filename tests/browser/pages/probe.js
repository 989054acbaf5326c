// Measures what a viewer sees while a player library plays a live stream in a
// <video>, and reports it to the test harness (tests/common/browser.rs) by
// POSTing JSON to /report on the page's own origin: an interim report every
// second (so a test that times out can say how far the page got) and one final
// report (`final: true`) once the page has played for `play_ms` after its first
// frame, or when `deadline_ms` after load has passed, or on a fatal player error.
//
// Query of the page: src=<media URL> play_ms=<ms> deadline_ms=<ms>.
// Every list in the report is bounded, so a long or broken run cannot grow it.
'use strict';

(function () {
  const MAX_ITEMS = 64;          // errors, samples, origins: at most this many each
  const SAMPLE_MS = 250;         // buffer/latency/progress sampling period
  const STALL_MS = 500;          // playhead frozen this long while playing = a stall
  const query = new URLSearchParams(location.search);
  const src = query.get('src') || '';
  const playMs = Number(query.get('play_ms') || 10000);
  const deadlineMs = Number(query.get('deadline_ms') || 40000);
  const loadedAt = performance.now();

  function push(list, item) {
    if (list.length < MAX_ITEMS) list.push(item);
  }

  // The top frames of an exception's stack, to say where a library failed.
  function where(e) {
    const stack = e && e.stack ? String(e.stack).split('\n').slice(1, 5) : [];
    return stack.length ? ' at ' + stack.map((l) => l.trim().replace(/^at /, '')).join(' < ') : '';
  }

  function median(xs) {
    if (!xs.length) return null;
    const s = xs.slice().sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  function bufferAhead(video) {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i)) {
        return b.end(i) - video.currentTime;
      }
    }
    return b.length ? Math.max(0, b.end(b.length - 1) - video.currentTime) : 0;
  }

  /// One probe per page: `new Probe(video, name, version)`, then the page sets
  /// `probe.latency` (a function returning the player's own latency behind live,
  /// in seconds, or null), optionally `probe.wallLatency` (this machine's clock
  /// minus the wall-clock time of the frame playing, from the stream's own
  /// timestamps, or null) and calls `probe.asked()` just before it tells the
  /// player to load `src` (`probe.asked(true)` when the player starts playback
  /// itself); player errors go to `probe.error(text, fatal)`, its buffer-empty
  /// notices to `probe.underrun(text)`.
  class Probe {
    constructor(video, player, version) {
      this.video = video;
      this.latency = () => null;
      this.wallLatency = () => null;
      this.r = {
        player, version, final: false, reason: null,
        user_agent: navigator.userAgent,
        page_origin: location.origin,
        media_url: src,
        mse_h264: window.MediaSource ? MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"') : false,
        mse_aac: window.MediaSource ? MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"') : false,
        first_frame_ms: null, played_ms: 0,
        frames_decoded: 0, frames_dropped: 0,
        waiting_events: 0, waiting_at_ms: [], stalls: 0, stall_at_ms: [], stalled_ms: 0,
        underrun_notices: [],
        latency_s: [], latency_p50: null, latency_max: null,
        wall_latency_s: [], wall_latency_p50: null,
        buffer_s: [], buffer_p50: null,
        current_time: 0, video_width: 0, video_height: 0,
        resource_origins: [], errors: [],
      };
      this.askedAt = null;
      this.firstFrameAt = null;
      this.lastTime = -1;
      this.frozenSince = null;
      this.inStall = false;
      this.done = false;
      this.watch();
    }

    error(text, fatal) {
      push(this.r.errors, (fatal ? 'fatal: ' : '') + String(text).slice(0, 600));
      if (fatal) this.finish('fatal player error');
    }

    // `playerPlays`: the player starts playback itself (dash.js autoplay); a
    // play() from the page before the player listens would hide the `play`
    // event it waits for.
    // A player's own notice that its buffer ran dry (hls.js
    // `bufferStalledError`): the same underrun the element's `waiting` shows,
    // kept apart from errors with the time it came after the first frame.
    underrun(text) {
      const at = this.firstFrameAt === null ? null : Math.round(performance.now() - this.firstFrameAt);
      push(this.r.underrun_notices, (at === null ? 'before first frame' : at + ' ms') + ': ' + text);
    }

    asked(playerPlays) {
      this.askedAt = performance.now();
      if (!playerPlays) this.video.play().catch((e) => push(this.r.errors, 'play(): ' + e));
    }

    watch() {
      const v = this.video;
      const first = () => {
        if (this.firstFrameAt === null && this.askedAt !== null) {
          this.firstFrameAt = performance.now();
          this.r.first_frame_ms = Math.round(this.firstFrameAt - this.askedAt);
        }
      };
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(first);
      v.addEventListener('playing', () => { if (v.currentTime > 0) first(); });
      v.addEventListener('waiting', () => {
        // A seek (a player jumping to the live edge) waits for data by design;
        // only a wait while playing on is the buffer running dry.
        if (this.firstFrameAt === null || v.seeking) return;
        this.r.waiting_events++;
        push(this.r.waiting_at_ms, Math.round(performance.now() - this.firstFrameAt));
      });
      v.addEventListener('error', () => {
        const e = v.error;
        this.error('video element: ' + (e ? e.code + ' ' + e.message : 'unknown'), true);
      });
      window.addEventListener('error', (e) => push(this.r.errors, 'script: ' + e.message + where(e.error)));
      window.addEventListener('unhandledrejection', (e) => push(this.r.errors, 'promise: ' + e.reason + where(e.reason)));
      // Every origin the page fetched from (the page's own, the media's, and any
      // outside one a player reached for on its own, such as a time server).
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          let origin;
          try { origin = new URL(e.name).origin; } catch (_) { continue; }
          if (!this.r.resource_origins.includes(origin)) push(this.r.resource_origins, origin);
        }
      }).observe({ type: 'resource', buffered: true });
      setInterval(() => this.sample(), SAMPLE_MS);
      setInterval(() => { if (!this.done) this.send(); }, 1000);
    }

    sample() {
      if (this.done) return;
      const v = this.video;
      const now = performance.now();
      if (v.getVideoPlaybackQuality) {
        const q = v.getVideoPlaybackQuality();
        this.r.frames_decoded = q.totalVideoFrames;
        this.r.frames_dropped = q.droppedVideoFrames;
      }
      this.r.current_time = v.currentTime;
      this.r.video_width = v.videoWidth;
      this.r.video_height = v.videoHeight;
      if (this.firstFrameAt === null && this.r.frames_decoded > 0 && v.currentTime > 0 && this.askedAt !== null) {
        this.firstFrameAt = now;
        this.r.first_frame_ms = Math.round(now - this.askedAt);
      }
      if (this.firstFrameAt !== null) {
        // A stall: the playhead does not move for STALL_MS while the page wants it to.
        if (v.currentTime !== this.lastTime || v.paused || v.ended) {
          this.lastTime = v.currentTime;
          if (this.inStall) this.r.stalled_ms += Math.round(now - this.frozenSince);
          this.frozenSince = now;
          this.inStall = false;
        } else if (!this.inStall && now - this.frozenSince >= STALL_MS) {
          this.inStall = true;
          this.r.stalls++;
          push(this.r.stall_at_ms, Math.round(this.frozenSince - this.firstFrameAt));
        }
        let lat = null;
        try { lat = this.latency(); } catch (e) { lat = null; }
        if (typeof lat === 'number' && isFinite(lat)) {
          this.keep(this.r.latency_s, lat);
        }
        let wall = null;
        try { wall = this.wallLatency(); } catch (e) { wall = null; }
        if (typeof wall === 'number' && isFinite(wall)) {
          this.keep(this.r.wall_latency_s, wall);
        }
        this.keep(this.r.buffer_s, bufferAhead(v));
        this.r.played_ms = Math.round(now - this.firstFrameAt);
        if (this.r.played_ms >= playMs) this.finish('played');
      }
      if (now - loadedAt >= deadlineMs) this.finish('page deadline');
    }

    // Keeps the newest MAX_ITEMS samples (a sliding window), rounded to ms.
    keep(list, x) {
      if (list.length >= MAX_ITEMS) list.shift();
      list.push(Math.round(x * 1000) / 1000);
    }

    finish(reason) {
      if (this.done) return;
      if (this.inStall) this.r.stalled_ms += Math.round(performance.now() - this.frozenSince);
      this.done = true;
      this.r.final = true;
      this.r.reason = reason;
      this.send();
    }

    send() {
      const r = this.r;
      r.latency_p50 = median(r.latency_s);
      r.latency_max = r.latency_s.length ? Math.max(...r.latency_s) : null;
      r.wall_latency_p50 = median(r.wall_latency_s);
      r.buffer_p50 = median(r.buffer_s);
      fetch('/report', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(r),
      }).catch(() => {});
    }
  }

  window.Probe = Probe;
  window.probeSrc = src;
})();
