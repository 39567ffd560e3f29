-- 0004: messages left by callers (voicemail / message-taking call-flow node), one per call (postgres).
CREATE TABLE voicemails (
    call_id   text     NOT NULL,   -- Call-ID of the caller's leg
    service   text     NOT NULL,   -- the service number dialled
    caller    text     NOT NULL,
    path      text     NOT NULL,   -- the WAV file
    sha256    text     NOT NULL,   -- of the WAV file, hex
    seconds   double precision NOT NULL,   -- recorded length
    at        double precision NOT NULL    -- Unix epoch seconds (end of the recording)
);

CREATE INDEX voicemails_at ON voicemails (at);
CREATE INDEX voicemails_call_id ON voicemails (call_id);
