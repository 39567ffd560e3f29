-- 0004: messages left by callers (voicemail / message-taking call-flow node), one per call (sqlite).
CREATE TABLE voicemails (
    call_id   TEXT    NOT NULL,   -- Call-ID of the caller's leg
    service   TEXT    NOT NULL,   -- the service number dialled
    caller    TEXT    NOT NULL,
    path      TEXT    NOT NULL,   -- the WAV file
    sha256    TEXT    NOT NULL,   -- of the WAV file, hex
    seconds   REAL    NOT NULL,   -- recorded length
    at        REAL    NOT NULL    -- Unix epoch seconds (end of the recording)
);

CREATE INDEX voicemails_at ON voicemails (at);
CREATE INDEX voicemails_call_id ON voicemails (call_id);
