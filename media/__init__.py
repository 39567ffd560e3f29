"""media — RTP/RTCP, G.711, RFC 4733 DTMF, jitter buffer, player, recorder, mixer, and the
one 20 ms media clock. Sans-I/O: every core takes `now`; sockets live in the call layer.
media/ knows neither SIP nor the ACD (see ARCHITECTURE.md, "Who may import whom").

Modules: `rtp` (packets, RTCP, sequence arithmetic, in-place relay helpers), `g711`,
`dtmf`, `jitterbuffer`, `session` (sender state, receive statistics), `player` (clips,
resampling, cache), `recorder` (stereo WAV/MP3), `mixer` (N-party, all rooms at once),
`clock` (`MediaClock`, `InactivityTracker`).
"""
